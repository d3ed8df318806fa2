using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

public sealed class ExecApiTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    [Fact]
    public async Task Exec_Argv_PassesArgumentsUnsplit()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var result = await sandbox.ExecAsync(ExecRequestBody.FromArgv("sh", "-c", "printf '%s|' \"$@\"", "sh", "a b", "$(id)", ";rm -rf /"));

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("a b|$(id)|;rm -rf /|", result.Stdout);
    }

    [Fact]
    public async Task Exec_ShellString_RunsThroughShell()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var result = await sandbox.ShAsync("echo one; echo two >&2; exit 5");

        Assert.Equal(5, result.ExitCode);
        Assert.Equal("one\n", result.Stdout);
        Assert.Equal("two\n", result.Stderr);
        Assert.False(result.TimedOut);
    }

    [Fact]
    public async Task Exec_EnvCwdUserStdin_Applied()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { Env = new Dictionary<string, string> { ["SANDBOX_VAR"] = "s" } });

        var result = await sandbox.ExecAsync(ExecRequestBody.FromShell("echo $SANDBOX_VAR $CMD_VAR $(pwd) $(id -u) $HOME; cat") with
        {
            Env = new Dictionary<string, string> { ["CMD_VAR"] = "c" },
            Cwd = "/tmp",
            User = "user",
            Stdin = "from stdin",
        });

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("s c /tmp 1000 /home/user\nfrom stdin", result.Stdout);
    }

    [Fact]
    public async Task Exec_UnknownUser_BadRequest()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        using var response = await Server.Http.PostAsJsonAsync($"/v1/sandboxes/{sandbox.Id}/exec", ExecRequestBody.FromShell("true") with { User = "nobody-here" }, ApiJsonContext.Default.ExecRequestBody);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("nobody-here", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exec_MissingWorkingDirectory_NotFound()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        using var response = await Server.Http.PostAsJsonAsync($"/v1/sandboxes/{sandbox.Id}/exec", ExecRequestBody.FromShell("true") with { Cwd = "/does/not/exist" }, ApiJsonContext.Default.ExecRequestBody);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Exec_ProgramNotFound_ExitCode127()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var result = await sandbox.ExecAsync(ExecRequestBody.FromArgv("no-such-program", "x"));

        Assert.Equal(127, result.ExitCode);
        Assert.Contains("not found", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exec_Timeout_KillsCommandAndSandboxStaysUsable()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var result = await sandbox.ExecAsync(ExecRequestBody.FromShell("echo started; sleep 60") with { TimeoutSeconds = 1 });
        var after = await sandbox.ShAsync("ps | grep -c '[s]leep 60'");

        Assert.True(result.TimedOut);
        Assert.Equal(137, result.ExitCode);
        Assert.Equal(9, result.Signal);
        Assert.Equal("started\n", result.Stdout);
        Assert.Equal("0\n", after.Stdout);
    }

    [Theory]
    [InlineData("{\"cmd\":42}")]
    [InlineData("{\"cmd\":[]}")]
    [InlineData("{\"cmd\":\"   \"}")]
    [InlineData("{\"cmd\":[\"ls\",7]}")]
    [InlineData("{}")]
    [InlineData("{\"cmd\":\"true\",\"cwd\":\"relative\"}")]
    [InlineData("{\"cmd\":\"true\",\"timeoutSeconds\":0}")]
    [InlineData("{\"cmd\":\"true\",\"env\":{\"A=B\":\"x\"}}")]
    [InlineData("{\"cmd\":[\"a\\u0000b\"]}")]
    public async Task Exec_InvalidRequest_BadRequest(string body)
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        using var response = await Server.Http.PostAsync($"/v1/sandboxes/{sandbox.Id}/exec", new StringContent(body, Encoding.UTF8, "application/json"));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Exec_Streaming_EventsArriveInOrderAsNdjson()
    {
        await using var sandbox = await Server.CreateSandboxAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/sandboxes/{sandbox.Id}/exec")
        {
            Content = JsonContent.Create(ExecRequestBody.FromShell("echo first; sleep 0.2; echo err >&2; sleep 0.2; echo last; exit 3"), ApiJsonContext.Default.ExecRequestBody),
        };
        request.Headers.Accept.ParseAdd("application/x-ndjson");

        using var response = await Server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var events = lines.Select(l => JsonSerializer.Deserialize(l, ApiJsonContext.Default.ExecStreamEvent)!).ToList();

        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(["started", "stdout", "stderr", "stdout", "exit"], events.Select(e => e.Type));
        Assert.Equal(["first\n", "err\n", "last\n"], events.Where(e => e.Data is not null).Select(e => e.Data));
        Assert.Equal(3, events[^1].ExitCode);
    }

    [Fact]
    public async Task Exec_StreamingClient_ReceivesFirstLineBeforeCommandEnds()
    {
        await using var sandbox = await Server.CreateSandboxAsync();
        var marker = "/tmp/go-" + Guid.NewGuid().ToString("N");

        // The command waits for a file that the test creates only after it saw the first line: it can only
        // finish if that line was flushed while it was still running.
        var stream = Server.Client.ExecStreamAsync(sandbox.Id, ExecRequestBody.FromShell($"echo ready; while [ ! -e {marker} ]; do sleep 0.05; done; echo done") with { TimeoutSeconds = 20 });
        var seen = new List<string>();
        await foreach (var e in stream)
        {
            seen.Add(e.Type + ":" + e.Data?.Trim());
            if (e.Data == "ready\n")
            {
                await sandbox.ShAsync($"touch {marker}");
            }
        }

        Assert.Equal(["started:", "stdout:ready", "stdout:done", "exit:"], seen);
    }

    [Fact]
    public async Task Exec_LargeOutput_CappedKeepingHeadAndTail()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var result = await sandbox.ShAsync("echo BEGIN; head -c 12000000 /dev/zero | tr '\\0' x; echo; echo END");

        Assert.True(result.OutputTruncated);
        Assert.StartsWith("BEGIN\n", result.Stdout, StringComparison.Ordinal);
        Assert.EndsWith("END\n", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("characters left out; stream the output to get all of it", result.Stdout, StringComparison.Ordinal);
        Assert.True(result.Stdout.Length < 5_000_000);
    }

    [Fact]
    public async Task Exec_BinaryAndUnicodeOutput_DecodedAsUtf8()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var result = await sandbox.ShAsync("printf 'h\\303\\251llo \\342\\234\\223'");

        Assert.Equal("héllo ✓", result.Stdout);
    }
}
