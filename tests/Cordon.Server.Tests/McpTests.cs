using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Cordon.Testing;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The MCP endpoint, driven by clients nobody here wrote: the official TypeScript SDK (over Streamable
/// HTTP, and over stdio through <c>cordon mcp</c>) and the official C# SDK.</summary>
[Collection(DefaultImageCollection.Name)]
public sealed class McpTests(DefaultImageServer fixture)
{
    private static readonly string[] ToolNames =
    [
        "create_sandbox", "list_sandboxes", "destroy_sandbox", "snapshot_sandbox", "fork_sandbox", "list_snapshots", "resume_sandbox",
        "run_command", "read_command_output", "write_command_input",
        "signal_command", "wait_command", "run_code", "read_file", "write_file", "edit_file", "list_files", "make_dir", "remove", "move",
    ];

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private Uri Endpoint => new(fixture.Server.Address, "/mcp");

    /// <summary>Connected exactly as the README's Goose entries say (see <see cref="GooseEntries"/>).</summary>
    [Theory]
    [InlineData("http")]
    [InlineData("stdio")]
    public async Task TypeScriptClient_UsesEveryTool_ThroughBothTransports(string transport)
    {
        var run = await RunTypeScriptClientAsync(transport);

        // The handshake and the tool list.
        Assert.Equal("2025-11-25", run.GetProperty("protocolVersion").GetString());
        Assert.Equal("cordon", run.GetProperty("serverInfo").GetProperty("name").GetString());
        Assert.Contains("session's sandbox", run.GetProperty("instructions").GetString(), StringComparison.Ordinal);
        var tools = run.GetProperty("tools").EnumerateArray().ToList();
        Assert.Equal(ToolNames.Order(), tools.Select(t => t.GetProperty("name").GetString()!).Order());
        Assert.All(tools, t =>
        {
            var annotations = t.GetProperty("annotations");
            foreach (var hint in (string[])["readOnlyHint", "destructiveHint", "idempotentHint"])
            {
                Assert.True(annotations.TryGetProperty(hint, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False, $"{t.GetProperty("name")} lacks {hint}");
            }
        });

        // A sandbox created with allowDomains reaches that name, and nothing by address.
        Assert.Contains("only pkgs.cordon.test", Tool(run, "netCreate").Text, StringComparison.Ordinal);
        Assert.StartsWith($"hello from {TestInternet.PublicHost} for pkgs.cordon.test", Tool(run, "netByName").Structured.GetProperty("stdout").GetString());
        Assert.Contains("Cordon refused", Tool(run, "netOther").Structured.GetProperty("stdout").GetString());
        Assert.False(Tool(run, "netDestroy").IsError);

        // Commands: exit codes, both streams, argv without a shell.
        var command = Tool(run, "command");
        Assert.Equal(3, command.Structured.GetProperty("exitCode").GetInt32());
        Assert.Equal("hello\n", command.Structured.GetProperty("stdout").GetString());
        Assert.Equal("oops\n", command.Structured.GetProperty("stderr").GetString());
        Assert.Contains("Exit code 3", command.Text, StringComparison.Ordinal);
        Assert.Equal("a b-c", Tool(run, "argv").Structured.GetProperty("stdout").GetString());

        // Files: write (parents created), edit, read with line numbers, list, move, mkdir, remove.
        Assert.False(Tool(run, "write").IsError);
        Assert.Contains("Replaced 1 occurrence", Tool(run, "edit").Text, StringComparison.Ordinal);
        Assert.Equal("     1\talpha\n     2\tBETA\n     3\tgamma\n", Tool(run, "read").Text); // three lines, as editors count them
        Assert.Contains("/tmp/mcp/notes.txt", Tool(run, "list").Text, StringComparison.Ordinal);
        Assert.False(Tool(run, "move").IsError);
        Assert.False(Tool(run, "mkdir").IsError);
        Assert.False(Tool(run, "remove").IsError);
        Assert.Equal(["renamed.txt"], Tool(run, "listAfter").Structured.GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("name").GetString()));

        // Code: state across calls, a chart as image content, an error as a tool error with traceback.
        Assert.Equal("set", Tool(run, "codeSet").Text);
        Assert.Equal("Out: 42", Tool(run, "codeGet").Text);
        var chart = Tool(run, "chart");
        var image = Assert.Single(chart.Images);
        Assert.Equal("image/png", image.GetProperty("mimeType").GetString());
        Assert.Equal("89504e470d0a1a0a", image.GetProperty("signature").GetString());
        Assert.True(image.GetProperty("bytes").GetInt32() > 5_000);
        var codeError = Tool(run, "codeError");
        Assert.True(codeError.IsError);
        Assert.Contains("ZeroDivisionError: division by zero", codeError.Text, StringComparison.Ordinal);
        Assert.Contains("----> 1 1/0", codeError.Text, StringComparison.Ordinal);
        Assert.Equal("Out: 15", Tool(run, "js").Text);

        // Caps: 588,895 characters of output arrive as start and end, with a cursor to page the middle.
        var big = Tool(run, "big");
        Assert.True(big.Structured.GetProperty("truncated").GetBoolean());
        Assert.True(big.Text.Length < 25_000, $"{big.Text.Length} characters");
        Assert.Contains("characters left out; page with read_command_output", big.Text, StringComparison.Ordinal);
        Assert.StartsWith("Exit code 0.\n--- stdout ---\n1\n2\n3\n", big.Text, StringComparison.Ordinal);
        Assert.EndsWith("99999\n100000\n", big.Text, StringComparison.Ordinal);
        Assert.Equal(588_895, big.Structured.GetProperty("nextStdoutCursor").GetInt64());
        Assert.StartsWith("Exit code 0.\n--- stdout ---\n51852\n", Tool(run, "bigPage").Text, StringComparison.Ordinal);

        // Background commands: wait, stdin, signals.
        Assert.True(Tool(run, "background").Structured.GetProperty("running").GetBoolean());
        Assert.Equal("line1\nline2\nline3\n", Tool(run, "waited").Structured.GetProperty("stdout").GetString());
        Assert.Equal("typed\n", Tool(run, "catWaited").Structured.GetProperty("stdout").GetString());
        Assert.Equal(9, Tool(run, "sleeperWaited").Structured.GetProperty("signal").GetInt32());

        // Progress notifications carry the output as it comes; a cancelled call kills its command.
        Assert.Equal("tick1\ntick2\ntick3\n", Tool(run, "progressed").Structured.GetProperty("stdout").GetString());
        Assert.Contains(run.GetProperty("progress").EnumerateArray(), p => p.GetString()!.Contains("tick2", StringComparison.Ordinal));
        Assert.Contains("AbortError", run.GetProperty("cancelled").GetString(), StringComparison.Ordinal);
        Assert.Equal("0\n", Tool(run, "afterCancel").Structured.GetProperty("stdout").GetString());

        // Errors are tool errors that say what to do next, and the server goes on.
        Assert.Contains("list_sandboxes", ToolError(run, "unknownSandbox"), StringComparison.Ordinal);
        Assert.Contains("either command", ToolError(run, "neither"), StringComparison.Ordinal);
        Assert.Contains("absolute path", ToolError(run, "badPath"), StringComparison.Ordinal);
        Assert.Contains("list_files", ToolError(run, "missingFile"), StringComparison.Ordinal);
        Assert.Contains("input schema", ToolError(run, "badType"), StringComparison.Ordinal);
        Assert.Contains("Handles come from run_command", ToolError(run, "unknownHandle"), StringComparison.Ordinal);
        Assert.Equal("still here\n", Tool(run, "afterErrors").Structured.GetProperty("stdout").GetString());

        // Sessions: each MCP session has its own sandbox; an agent session id in _meta binds across connections.
        var first = run.GetProperty("firstSandbox").GetString();
        var second = run.GetProperty("secondSandbox").GetString();
        var agent = run.GetProperty("agentSandbox").GetString();
        Assert.NotNull(first);
        Assert.NotEqual(first, second);
        Assert.NotEqual(first, agent);
        Assert.NotEqual(second, agent);
        Assert.Contains("No such file", Tool(run, "otherSession").Text, StringComparison.Ordinal);
        Assert.Equal("     1\tshared by the agent session\n", Tool(run, "agentRead").Text);

        // Keeping the work: the agent session's sandbox snapshotted, a new session's sandbox from the snapshot, a fork.
        Assert.Contains("snapshot", Tool(run, "snapshot").Text, StringComparison.Ordinal);
        var snapshotName = Tool(run, "snapshot").Structured.GetProperty("name").GetString()!;
        Assert.Contains(Tool(run, "snapshots").Structured.GetProperty("snapshots").EnumerateArray(), s => s.GetProperty("name").GetString() == snapshotName);
        Assert.False(Tool(run, "fromSnapshot").IsError, Tool(run, "fromSnapshot").Text);
        Assert.Equal("     1\tshared by the agent session\n", Tool(run, "fromSnapshotRead").Text);
        Assert.True(Tool(run, "fork").Structured.TryGetProperty("sandboxes", out var forks) && forks.GetArrayLength() == 2, "fork_sandbox answered: " + Tool(run, "fork").Text);
        Assert.Equal("     1\tshared by the agent session\n", Tool(run, "forkRead").Text);
        Assert.Contains("running", Tool(run, "resume").Text, StringComparison.Ordinal);

        // Destroy: the session's sandboxes go, and destroying again is not an error.
        Assert.Contains(agent!, Tool(run, "destroyAgent").Text, StringComparison.Ordinal);
        Assert.Contains(second!, Tool(run, "destroySecond").Text, StringComparison.Ordinal);
        Assert.Contains(first!, Tool(run, "destroyFirst").Text, StringComparison.Ordinal);
        Assert.False(Tool(run, "destroyAgain").IsError);
        var left = Tool(run, "listAfterDestroy").Structured;
        Assert.Equal(JsonValueKind.Null, left.GetProperty("sessionSandboxId").ValueKind);
        Assert.DoesNotContain(left.GetProperty("sandboxes").EnumerateArray(), s => s.GetProperty("id").GetString() is { } id && (id == first || id == second || id == agent));
    }

    [Theory]
    [InlineData("2025-06-18")]
    [InlineData("2025-11-25")]
    [InlineData("2026-07-28")]
    public async Task CSharpClient_NegotiatesEachRevision_AndGetsChartsAsImages(string revision)
    {
        await using var client = await McpClient.CreateAsync(
            new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = Endpoint,
                AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + ServerFixture.AdminKey },
            }),
            new McpClientOptions { ProtocolVersion = revision },
            cancellationToken: Token);

        var tools = await client.ListToolsAsync(cancellationToken: Token);
        var chart = await client.CallToolAsync("run_code", new Dictionary<string, object?> { ["code"] = "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [3, 5])\nNone" }, cancellationToken: Token);
        var sandbox = await client.CallToolAsync("list_sandboxes", cancellationToken: Token);
        var session = sandbox.StructuredContent?.GetProperty("sessionSandboxId").GetString();
        await client.CallToolAsync("destroy_sandbox", cancellationToken: Token);

        Assert.Equal(revision, client.NegotiatedProtocolVersion);
        Assert.Equal(ToolNames.Order(), tools.Select(t => t.Name).Order());
        Assert.NotNull(tools.Single(t => t.Name == "run_command").ProtocolTool.OutputSchema);
        var image = Assert.Single(chart.Content.OfType<ImageContentBlock>());
        Assert.Equal("image/png", image.MimeType);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], image.DecodedData.ToArray()[..4]);
        Assert.NotNull(session);
    }

    [Fact]
    public async Task StreamableHttp_FollowsTheSpec_ForSessionsTheGetStreamAndAuth()
    {
        using var anonymous = new HttpClient { BaseAddress = fixture.Server.Address };
        using var unauthorized = await anonymous.PostAsync("/mcp", Initialize("2025-11-25"), Token);
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);

        var http = fixture.Server.Http;
        using var initialized = await http.SendAsync(Post(Initialize("2025-11-25")), Token);
        Assert.Equal(HttpStatusCode.OK, initialized.StatusCode);
        var session = Assert.Single(initialized.Headers.GetValues("Mcp-Session-Id"));
        var body = await initialized.Content.ReadAsStringAsync(Token);
        Assert.Contains("\"protocolVersion\":\"2025-11-25\"", body, StringComparison.Ordinal);

        var notify = Post(new StringContent("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", Encoding.UTF8, "application/json"));
        notify.Headers.Add("Mcp-Session-Id", session);
        notify.Headers.Add("MCP-Protocol-Version", "2025-11-25");
        using var accepted = await http.SendAsync(notify, Token);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);

        // The GET channel: a server-to-client event stream for the session.
        using var get = new HttpRequestMessage(HttpMethod.Get, "/mcp");
        get.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        get.Headers.Add("Mcp-Session-Id", session);
        get.Headers.Add("MCP-Protocol-Version", "2025-11-25");
        using var stream = await http.SendAsync(get, HttpCompletionOption.ResponseHeadersRead, Token);
        Assert.Equal(HttpStatusCode.OK, stream.StatusCode);
        Assert.Equal("text/event-stream", stream.Content.Headers.ContentType?.MediaType);

        // An unknown session is 404, so the client knows to start a new one.
        var stale = Post(new StringContent("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}", Encoding.UTF8, "application/json"));
        stale.Headers.Add("Mcp-Session-Id", "no-such-session");
        stale.Headers.Add("MCP-Protocol-Version", "2025-11-25");
        using var notFound = await http.SendAsync(stale, Token);
        Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);

        using var delete = new HttpRequestMessage(HttpMethod.Delete, "/mcp");
        delete.Headers.Add("Mcp-Session-Id", session);
        using var deleted = await http.SendAsync(delete, Token);
        Assert.True(deleted.IsSuccessStatusCode, $"DELETE answered {(int)deleted.StatusCode}");
    }

    /// <summary>The tool list (names, annotations, input and output schemas) is checked in as docs/mcp-tools.md:
    /// a change to a tool shows up as a diff in review.</summary>
    [Fact]
    public async Task ToolList_MatchesCheckedInSnapshot()
    {
        await using var client = await McpClient.CreateAsync(
            new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = Endpoint,
                AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + ServerFixture.AdminKey },
            }),
            cancellationToken: Token);
        var tools = await client.ListToolsAsync(cancellationToken: Token);

        var doc = new StringBuilder();
        doc.Append("# MCP tools\n\nServed at `/mcp` (Streamable HTTP) and by `cordon mcp` (stdio). Generated from `tools/list` by\n");
        doc.Append("`McpTests.ToolList_MatchesCheckedInSnapshot`; update with `CORDON_UPDATE_CONTRACTS=1 ./cordon test`.\n");
        var indented = new JsonSerializerOptions { WriteIndented = true };
        foreach (var tool in tools.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            var p = tool.ProtocolTool;
            var a = p.Annotations;
            doc.Append($"\n## `{p.Name}`\n\n{p.Description}\n\n");
            doc.Append($"readOnlyHint: {a?.ReadOnlyHint}, destructiveHint: {a?.DestructiveHint}, idempotentHint: {a?.IdempotentHint}, openWorldHint: {a?.OpenWorldHint}\n\n");
            doc.Append("Input schema:\n\n```json\n").Append(JsonSerializer.Serialize(p.InputSchema, indented)).Append("\n```\n");
            if (p.OutputSchema is { } output)
            {
                doc.Append("\nOutput schema:\n\n```json\n").Append(JsonSerializer.Serialize(output, indented)).Append("\n```\n");
            }
        }

        var file = Path.Combine(TestPaths.RepositoryRoot, "docs", "mcp-tools.md");
        if (Environment.GetEnvironmentVariable("CORDON_UPDATE_CONTRACTS") == "1")
        {
            await File.WriteAllTextAsync(file, doc.ToString(), Token);
        }

        Assert.True(File.Exists(file), "docs/mcp-tools.md is missing: run the tests once with CORDON_UPDATE_CONTRACTS=1.");
        Assert.True(doc.ToString() == await File.ReadAllTextAsync(file, Token), "The served tool list differs from docs/mcp-tools.md: if the change is intended, run the tests with CORDON_UPDATE_CONTRACTS=1 and commit the file.");
    }

    private static HttpRequestMessage Post(HttpContent content)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = content };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return request;
    }

    private static StringContent Initialize(string revision) => new(
        """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":""" + JsonSerializer.Serialize(revision) +
        ""","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}""",
        Encoding.UTF8, "application/json");

    /// <summary>The README's Goose extension entries (stdio: cmd and args; HTTP: uri and the Authorization
    /// header), with their placeholders filled in for this test server.</summary>
    private Dictionary<string, string> GooseEntries()
    {
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "README.md"));
        var section = readme[readme.IndexOf("## Use with Goose", StringComparison.Ordinal)..];
        string Value(string key) => System.Text.RegularExpressions.Regex.Match(section, "^\\s*" + key + ":\\s*(.+)$", System.Text.RegularExpressions.RegexOptions.Multiline).Groups[1].Value.Trim();
        var cmd = Value("cmd");
        var args = Value("args");
        var uri = new Uri(Value("uri"));
        var authorization = Value("Authorization").Trim('"');
        Assert.StartsWith("/path/to/cordon/", cmd, StringComparison.Ordinal);
        Assert.Equal("[mcp]", args);
        Assert.Equal("/mcp", uri.AbsolutePath);
        Assert.Equal("Bearer <your cordon key>", authorization);
        return new Dictionary<string, string>
        {
            ["MCP_GOOSE_CMD"] = Path.Combine(TestPaths.RepositoryRoot, cmd["/path/to/cordon/".Length..]),
            ["MCP_GOOSE_ARGS"] = "[\"mcp\"]",
            ["MCP_GOOSE_URI"] = new UriBuilder(uri) { Host = fixture.Server.Address.Host, Port = fixture.Server.Address.Port }.Uri.ToString(),
            ["MCP_GOOSE_AUTHORIZATION"] = authorization.Replace("<your cordon key>", ServerFixture.AdminKey, StringComparison.Ordinal),
        };
    }

    private Task<JsonElement> RunTypeScriptClientAsync(string transport)
    {
        TestInternet.EnsureUp();
        var env = GooseEntries();
        env["TESTNET_NAME"] = "pkgs." + TestInternet.Domain;
        env["TESTNET_PUBLIC"] = TestInternet.PublicHost;
        return NodeScript.RunAsync("mcp", ["client.mjs", transport, fixture.Server.Address.ToString(), ServerFixture.AdminKey, TestPaths.CliPath], env);
    }

    private static ToolOutcome Tool(JsonElement run, string step)
    {
        var e = run.GetProperty(step);
        Assert.False(e.TryGetProperty("protocolError", out var protocolError), $"{step}: protocol error {protocolError}");
        return new ToolOutcome(
            e.GetProperty("isError").GetBoolean(),
            e.GetProperty("text").GetString()!,
            [.. e.GetProperty("images").EnumerateArray()],
            e.GetProperty("structured"));
    }

    private static string ToolError(JsonElement run, string step)
    {
        var outcome = Tool(run, step);
        Assert.True(outcome.IsError, $"{step} should be a tool error: {outcome.Text}");
        return outcome.Text;
    }

    private sealed record ToolOutcome(bool IsError, string Text, IReadOnlyList<JsonElement> Images, JsonElement Structured);
}
