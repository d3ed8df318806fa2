using System.Net;
using System.Text;
using System.Text.Json;
using Wire = Cordon.Server.Compat.E2b.Wire;
using Google.Protobuf;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The official E2B SDKs from npm (e2b 2.51.0, which uses the /v2 paths, e2b 2.50.0, which uses the
/// older ones, and @e2b/code-interpreter 2.8.0) run unchanged against Cordon, pointed at it with
/// E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY (tests/e2b/suite.mjs).</summary>
[Collection(DefaultImageCollection.Name)]
public sealed class E2bCompatTests(DefaultImageServer fixture)
{
    [Theory]
    [InlineData("e2b")]
    [InlineData("e2b-2.50")]
    public async Task Sdk_CommandsFilesAndLifecycle_Work(string sdk)
    {
        var run = await RunSuiteAsync("core", sdk);

        // Commands: env from create and from the call, both callbacks, the template's user and home.
        var first = run.GetProperty("run");
        Assert.Equal("from-create from-run\nuser\n/home/user\n", first.GetProperty("stdout").GetString());
        Assert.Equal("oops\n", first.GetProperty("stderr").GetString());
        Assert.Equal(first.GetProperty("stdout").GetString(), first.GetProperty("seen").GetProperty("stdout").GetString());
        Assert.Equal("oops\n", first.GetProperty("seen").GetProperty("stderr").GetString());
        AssertError(run, "exitCode", "CommandExitError", "exit status 3");
        Assert.Equal(3, run.GetProperty("exitCode").GetProperty("exitCode").GetInt32());
        Assert.Equal("partial\n", run.GetProperty("exitCode").GetProperty("stdout").GetString());
        AssertError(run, "timeout", "TimeoutError", "deadline_exceeded");
        Assert.Equal("root\n", run.GetProperty("root").GetString());
        Assert.Equal("/tmp\n", run.GetProperty("cwd").GetString());
        AssertError(run, "badCwd", "InvalidArgumentError", "cwd '/no/such/dir' does not exist");

        // Background processes outlive their stream: wait, reconnect by pid, stdin, kill, list.
        Assert.Equal("line1\nline2\nline3\n", run.GetProperty("background").GetProperty("stdout").GetString());
        Assert.Equal("after-reconnect\n", run.GetProperty("reconnect").GetProperty("stdout").GetString());
        Assert.Equal("typed input\n", run.GetProperty("stdin").GetProperty("stdout").GetString());
        var kill = run.GetProperty("killCommand");
        Assert.True(kill.GetProperty("listed").GetBoolean());
        Assert.True(kill.GetProperty("killed").GetBoolean());
        Assert.Equal("signal: killed", kill.GetProperty("ended").GetProperty("message").GetString());
        Assert.False(kill.GetProperty("killedAgain").GetBoolean());

        // A terminal: the shell sees a tty of the asked size, runs what is typed, follows a resize, and exits.
        var pty = run.GetProperty("pty");
        var screen = pty.GetProperty("output").GetString()!;
        Assert.Contains("30 100\r\n/dev/pts/", screen, StringComparison.Ordinal);
        Assert.Contains("pty-42", screen, StringComparison.Ordinal);
        Assert.Contains("40 120", screen, StringComparison.Ordinal);
        Assert.Equal(0, pty.GetProperty("exitCode").GetInt32());

        // Files.
        Assert.Equal("hello from e2b\n", run.GetProperty("text").GetProperty("read").GetString());
        Assert.Equal("in home", run.GetProperty("relative").GetString());
        Assert.Equal([0, 1, 2, 253, 254, 255], run.GetProperty("bytes").EnumerateArray().Select(b => b.GetInt32()));
        var big = run.GetProperty("big");
        Assert.False(big.TryGetProperty("error", out _), "the 50 MiB round trip failed: " + big);
        Assert.Equal(50 * 1024 * 1024, big.GetProperty("length").GetInt64());
        Assert.Equal(big.GetProperty("sent").GetString(), big.GetProperty("received").GetString());
        Assert.Equal(big.GetProperty("sent").GetString(), big.GetProperty("inside").GetString());
        Assert.True(run.GetProperty("gzip").GetProperty("same").GetBoolean());
        Assert.Equal(["/tmp/multi/a.txt", "/tmp/multi/b.txt"], run.GetProperty("writeFiles").EnumerateArray().Select(p => p.GetString()));
        var signed = run.GetProperty("signedUrls");
        Assert.Equal(200, signed.GetProperty("uploaded").GetInt32());
        Assert.Equal("uploaded with a signed URL", signed.GetProperty("downloaded").GetString());
        Assert.Equal(401, signed.GetProperty("tampered").GetInt32());
        Assert.Equal(401, signed.GetProperty("wrongOperation").GetInt32());
        var listed = Assert.Single(run.GetProperty("filesList").EnumerateArray());
        Assert.Equal("hello.txt", listed.GetProperty("name").GetString());
        Assert.Equal("file", listed.GetProperty("type").GetString());
        Assert.Equal([true, false], run.GetProperty("makeDir").EnumerateArray().Select(b => b.GetBoolean()));
        Assert.Equal("/home/user/notes/renamed.txt", run.GetProperty("rename").GetString());
        Assert.Equal([true, false], run.GetProperty("exists").EnumerateArray().Select(b => b.GetBoolean()));
        var info = run.GetProperty("fileInfo");
        Assert.Equal("-rw-r--r--", info.GetProperty("permissions").GetString());
        Assert.Equal("user", info.GetProperty("owner").GetString());
        Assert.Equal(15, info.GetProperty("size").GetInt32());
        Assert.False(run.GetProperty("remove").GetBoolean());
        AssertError(run, "readMissing", "FileNotFoundError", "does not exist");

        // Watching: creations (also in a new subdirectory, recursively) and removals, with relative names.
        Assert.Equal(["create new.txt", "create sub", "create sub/inner.txt", "remove new.txt"],
            run.GetProperty("watchDir").EnumerateArray().Select(e => e.GetString()).Where(e => !e!.StartsWith("write ", StringComparison.Ordinal)));

        // A web server in the sandbox through getHost's host name and through the routing headers, a closed
        // port as a clear 502, and a WebSocket upgrade carried both ways.
        var ports = run.GetProperty("ports");
        Assert.StartsWith("8000-" + run.GetProperty("sandboxId").GetString() + ".", ports.GetProperty("host").GetString(), StringComparison.Ordinal);
        Assert.Equal("<h1>served from the sandbox</h1>", ports.GetProperty("byHost").GetProperty("body").GetString());
        Assert.Equal("<h1>served from the sandbox</h1>", ports.GetProperty("byHeaders").GetProperty("body").GetString());
        Assert.Equal(502, ports.GetProperty("missing").GetProperty("status").GetInt32());
        Assert.Contains("Nothing is listening on port 8999", ports.GetProperty("missing").GetProperty("body").GetString(), StringComparison.Ordinal);
        Assert.Equal(101, ports.GetProperty("echoed").GetProperty("status").GetInt32());
        Assert.Equal("PING THROUGH THE TUNNEL", ports.GetProperty("echoed").GetProperty("got").GetString());

        // Lifecycle.
        var sandbox = run.GetProperty("getInfo");
        Assert.Equal("base", sandbox.GetProperty("templateId").GetString());
        Assert.Equal("running", sandbox.GetProperty("state").GetString());
        Assert.StartsWith("core-", sandbox.GetProperty("metadata").GetProperty("suite").GetString(), StringComparison.Ordinal);
        Assert.InRange(run.GetProperty("setTimeout").GetInt32(), 590, 600);
        Assert.True(run.GetProperty("isRunning").GetBoolean());
        Assert.Equal([run.GetProperty("sandboxId").GetString()], run.GetProperty("list").EnumerateArray().Select(s => s.GetString()));
        var pages = run.GetProperty("pages");
        Assert.Equal(pages.GetProperty("ids").EnumerateArray().Select(i => new[] { i.GetString() }), pages.GetProperty("pages").EnumerateArray().Select(p => p.EnumerateArray().Select(i => i.GetString()).ToArray()));
        Assert.Equal("connected\n", run.GetProperty("connect").GetString());
        var metrics = run.GetProperty("metrics");
        Assert.Equal(1, metrics.GetProperty("count").GetInt32());
        Assert.True(metrics.GetProperty("memUsed").GetInt64() > 0);
        Assert.Equal(512L * 1024 * 1024, metrics.GetProperty("memTotal").GetInt64());
        var pause = run.GetProperty("pause");
        Assert.True(pause.GetProperty("paused").GetBoolean());
        Assert.Equal("paused", pause.GetProperty("state").GetString());
        Assert.False(pause.GetProperty("pausedAgain").GetBoolean());
        Assert.Equal("running", pause.GetProperty("stateAfter").GetString());
        Assert.Equal("survives a pause", pause.GetProperty("kept").GetString());
        Assert.True(run.GetProperty("killSandbox").GetBoolean());
        Assert.False(run.GetProperty("killAgain").GetBoolean());
        AssertError(run, "afterKill", "SandboxNotFoundError", "not found");
    }

    [Fact]
    public async Task CodeInterpreterSdk_RunsCodeWithStateChartsErrorsAndContexts()
    {
        var run = await RunSuiteAsync("code", "@e2b/code-interpreter");

        Assert.Equal("42", run.GetProperty("state").GetProperty("text").GetString());
        Assert.Equal(2, run.GetProperty("state").GetProperty("executionCount").GetInt32());
        Assert.Equal(["to stdout\n"], run.GetProperty("logs").GetProperty("stdout").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(["to stderr\n"], run.GetProperty("logs").GetProperty("stderr").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(["to stdout\n"], run.GetProperty("logs").GetProperty("callback").EnumerateArray().Select(s => s.GetString()));
        var chart = run.GetProperty("chart");
        Assert.Equal("89504e470d0a1a0a", chart.GetProperty("signature").GetString());
        Assert.True(chart.GetProperty("length").GetInt32() > 5_000);
        Assert.True(run.GetProperty("dataframe").GetProperty("html").GetBoolean());
        var error = run.GetProperty("error");
        Assert.Equal("ZeroDivisionError", error.GetProperty("name").GetString());
        Assert.Contains("----> 1 1 / 0", error.GetProperty("traceback").GetString(), StringComparison.Ordinal);
        Assert.Equal("41", run.GetProperty("afterError").GetString());
        Assert.Equal("set", run.GetProperty("envs").GetProperty("during").GetString());
        Assert.Equal("unset", run.GetProperty("envs").GetProperty("after").GetString());
        Assert.Equal("21", run.GetProperty("js").GetProperty("text").GetString());
        Assert.Equal("False", run.GetProperty("restart").GetString());
        var contexts = run.GetProperty("contexts");
        Assert.Equal("/tmp", contexts.GetProperty("cwd").GetString());
        Assert.True(contexts.GetProperty("listed").GetBoolean());
        Assert.True(contexts.GetProperty("removed").GetBoolean());
        Assert.Equal(45, run.GetProperty("agentLoop").GetProperty("result").GetProperty("sum").GetInt32());
        var analysis = run.GetProperty("analysis");
        Assert.Equal("62", analysis.GetProperty("total").GetString());
        Assert.Equal(1, analysis.GetProperty("charts").GetInt32());
        Assert.Equal("89504e470d0a1a0a", analysis.GetProperty("savedSignature").GetString());
        Assert.True(run.GetProperty("killSandbox").GetBoolean());
    }

    /// <summary>The SDKs speak Connect's JSON codec; the binary protobuf codec works too (unary and streams).</summary>
    [Fact]
    public async Task Envd_SpeaksConnectsBinaryProtobufCodec()
    {
        var token = TestContext.Current.CancellationToken;
        await using var sandbox = await EnvdSandbox.CreateAsync(fixture.Server.Http, token);

        // Unary.
        using var stat = await sandbox.SendAsync("/filesystem.Filesystem/Stat", new Wire.Filesystem.StatRequest { Path = "/etc/hostname" }.ToByteArray(), "application/proto");
        Assert.Equal("application/proto", stat.Content.Headers.ContentType?.MediaType);
        var entry = Wire.Filesystem.StatResponse.Parser.ParseFrom(await stat.Content.ReadAsByteArrayAsync(token)).Entry;
        Assert.Equal("hostname", entry.Name);
        Assert.Equal(Wire.Filesystem.FileType.File, entry.Type);

        // A server stream: enveloped protobuf messages, then the end-stream frame (JSON in both codecs).
        var start = new Wire.Process.StartRequest { Process = new Wire.Process.ProcessConfig { Cmd = "/bin/echo", Args = { "binary", "codec" } } }.ToByteArray();
        using var stream = await sandbox.SendAsync("/process.Process/Start", EnvdSandbox.Envelope(start), "application/connect+proto");
        Assert.Equal("application/connect+proto", stream.Content.Headers.ContentType?.MediaType);
        var bytes = await stream.Content.ReadAsByteArrayAsync(token);
        var events = new List<Wire.Process.ProcessEvent>();
        var end = "";
        for (var offset = 0; offset < bytes.Length;)
        {
            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(offset + 1));
            var payload = bytes.AsSpan(offset + 5, length).ToArray();
            if (bytes[offset] == 0x02)
            {
                end = Encoding.UTF8.GetString(payload);
            }
            else
            {
                events.Add(Wire.Process.StartResponse.Parser.ParseFrom(payload).Event);
            }

            offset += 5 + length;
        }

        Assert.True(events[0].Start.Pid > 0);
        Assert.Equal("binary codec\n", string.Concat(events.Where(e => e.Data is not null).Select(e => e.Data.Stdout.ToStringUtf8())));
        Assert.True(events[^1].End.Exited);
        Assert.Equal(0, events[^1].End.ExitCode);
        Assert.Equal("{}", end);

        // Errors stay JSON, as Connect wants.
        using var unknown = await sandbox.SendAsync("/filesystem.Filesystem/Stat", new Wire.Filesystem.StatRequest { Path = "/no/such/file" }.ToByteArray(), "application/proto");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("not_found", JsonDocument.Parse(await unknown.Content.ReadAsStringAsync(token)).RootElement.GetProperty("code").GetString());
    }

    /// <summary>envd traffic needs the sandbox's own access token; the API key or another sandbox's token is not it.</summary>
    [Fact]
    public async Task Envd_WithoutTheSandboxsToken_Unauthorized()
    {
        var token = TestContext.Current.CancellationToken;
        await using var sandbox = await EnvdSandbox.CreateAsync(fixture.Server.Http, token);
        await using var other = await EnvdSandbox.CreateAsync(fixture.Server.Http, token);
        var stat = Encoding.UTF8.GetBytes("{\"path\":\"/etc/hostname\"}");

        using var missing = await sandbox.SendAsync("/filesystem.Filesystem/Stat", stat, "application/json", accessToken: "");
        using var foreign = await sandbox.SendAsync("/filesystem.Filesystem/Stat", stat, "application/json", accessToken: other.AccessToken);
        using var own = await sandbox.SendAsync("/filesystem.Filesystem/Stat", stat, "application/json");

        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, foreign.StatusCode);
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
    }

    /// <summary>Malformed requests to the sandbox plane are 4xx with E2B's error body, never a 500.</summary>
    [Fact]
    public async Task SandboxPlane_BadRequests_AreClientErrors()
    {
        var token = TestContext.Current.CancellationToken;
        await using var sandbox = await EnvdSandbox.CreateAsync(fixture.Server.Http, token);

        using var wrongType = await sandbox.SendAsync("/contexts", Encoding.UTF8.GetBytes("{\"language\":5}"), "application/json", port: 49999);
        using var notJson = await sandbox.SendAsync("/execute", Encoding.UTF8.GetBytes("{code"), "application/json", port: 49999);
        using var badEnvelope = await sandbox.SendAsync("/process.Process/Start", [0, 0, 0, 0, 99, 1], "application/connect+json");
        using var noPath = await sandbox.SendAsync("/filesystem.Filesystem/Stat", Encoding.UTF8.GetBytes("{}"), "application/json");

        Assert.Equal(HttpStatusCode.BadRequest, wrongType.StatusCode);
        Assert.Equal(400, JsonDocument.Parse(await wrongType.Content.ReadAsStringAsync(token)).RootElement.GetProperty("code").GetInt32());
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        Assert.Contains("\"code\":\"invalid_argument\"", await badEnvelope.Content.ReadAsStringAsync(token), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, noPath.StatusCode);
    }

    /// <summary>Review finding 14: a download's length is what was read, not what lstat says, so a symlink and a
    /// /proc file (size 0) come whole.</summary>
    [Fact]
    public async Task EnvdFiles_SymlinkAndProcFile_DownloadWhole()
    {
        var token = TestContext.Current.CancellationToken;
        await using var sandbox = await EnvdSandbox.CreateAsync(fixture.Server.Http, token, ServerFixture.TestImage);
        var content = new string('x', 5000) + "\n";
        using var write = await fixture.Server.Http.PutAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/tmp/target.txt", new StringContent(content), token);
        write.EnsureSuccessStatusCode();
        await fixture.Server.Client.ExecAsync(sandbox.Id, Cordon.Protocol.Api.ExecRequestBody.FromShell("ln -s /tmp/target.txt /tmp/link"), token);

        async Task<(HttpStatusCode Status, string Body)> DownloadAsync(string path)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/files?path=" + Uri.EscapeDataString(path));
            request.Headers.Add("E2b-Sandbox-Id", sandbox.Id);
            request.Headers.Add("E2b-Sandbox-Port", "49983");
            request.Headers.Add("X-Access-Token", sandbox.AccessToken);
            using var response = await fixture.Server.Http.SendAsync(request, token);
            return (response.StatusCode, await response.Content.ReadAsStringAsync(token));
        }

        var link = await DownloadAsync("/tmp/link");
        var proc = await DownloadAsync("/proc/self/status");

        Assert.Equal((HttpStatusCode.OK, content), link);
        Assert.Equal(HttpStatusCode.OK, proc.Status);
        Assert.Contains("Pid:", proc.Body, StringComparison.Ordinal);
    }

    /// <summary>The Python SDK watches by polling: CreateWatcher, GetWatcherEvents, RemoveWatcher.</summary>
    [Fact]
    public async Task Envd_PollingWatchers_CollectChangesBetweenPolls()
    {
        var token = TestContext.Current.CancellationToken;
        await using var sandbox = await EnvdSandbox.CreateAsync(fixture.Server.Http, token);
        async Task<(HttpStatusCode Status, JsonElement Body)> CallAsync(string method, string json)
        {
            using var response = await sandbox.SendAsync(method, Encoding.UTF8.GetBytes(json), "application/json");
            return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync(token)).RootElement.Clone());
        }

        await CallAsync("/filesystem.Filesystem/MakeDir", "{\"path\":\"/tmp/polled\"}");
        var (_, watcher) = await CallAsync("/filesystem.Filesystem/CreateWatcher", "{\"path\":\"/tmp/polled\",\"recursive\":true}");
        var watcherId = watcher.GetProperty("watcherId").GetString()!;
        await Client.WriteFileAsync(sandbox.Id, "/tmp/polled/one.txt", new MemoryStream([1]), token);
        var names = new List<string>();
        for (var i = 0; i < 100 && !names.Contains("EVENT_TYPE_CREATE one.txt"); i++)
        {
            var (_, polled) = await CallAsync("/filesystem.Filesystem/GetWatcherEvents", $"{{\"watcherId\":\"{watcherId}\"}}");
            names.AddRange(polled.GetProperty("events").EnumerateArray().Select(e => $"{e.GetProperty("type").GetString()} {e.GetProperty("name").GetString()}"));
            await Task.Delay(100, token);
        }

        var (removed, _) = await CallAsync("/filesystem.Filesystem/RemoveWatcher", $"{{\"watcherId\":\"{watcherId}\"}}");
        var (gone, error) = await CallAsync("/filesystem.Filesystem/GetWatcherEvents", $"{{\"watcherId\":\"{watcherId}\"}}");

        Assert.Contains("EVENT_TYPE_CREATE one.txt", names);
        Assert.Equal(HttpStatusCode.OK, removed);
        Assert.Equal(HttpStatusCode.NotFound, gone);
        Assert.Equal("not_found", error.GetProperty("code").GetString());
    }

    /// <summary>StreamInput, the client stream no fetch-based SDK can use: input sent as a stream reaches the process.</summary>
    [Fact]
    public async Task Envd_StreamInput_FeedsARunningProcess()
    {
        var token = TestContext.Current.CancellationToken;
        await using var sandbox = await EnvdSandbox.CreateAsync(fixture.Server.Http, token);
        static byte[] Json(params string[] messages) => EnvdSandbox.Envelope([.. messages.Select(Encoding.UTF8.GetBytes)]);

        using var started = await sandbox.SendAsync("/process.Process/Start", Json("{\"process\":{\"cmd\":\"/bin/cat\"},\"stdin\":true}"), "application/connect+json", streaming: true);
        var output = await started.Content.ReadAsStreamAsync(token);
        var header = new byte[5];
        await output.ReadExactlyAsync(header, token);
        var first = new byte[System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1))];
        await output.ReadExactlyAsync(first, token);
        var pid = JsonDocument.Parse(first).RootElement.GetProperty("event").GetProperty("start").GetProperty("pid").GetInt32();

        var input = Convert.ToBase64String(Encoding.UTF8.GetBytes("streamed input\n"));
        using var streamed = await sandbox.SendAsync("/process.Process/StreamInput",
            Json($"{{\"start\":{{\"process\":{{\"pid\":{pid}}}}}}}", "{\"keepalive\":{}}", $"{{\"data\":{{\"input\":{{\"stdin\":\"{input}\"}}}}}}"),
            "application/connect+json");
        using var closed = await sandbox.SendAsync("/process.Process/CloseStdin", Encoding.UTF8.GetBytes($"{{\"process\":{{\"pid\":{pid}}}}}"), "application/json");
        using var rest = new MemoryStream();
        await output.CopyToAsync(rest, token);
        var text = Encoding.UTF8.GetString(rest.ToArray());

        Assert.Equal(HttpStatusCode.OK, streamed.StatusCode);
        Assert.Equal(HttpStatusCode.OK, closed.StatusCode);
        Assert.Contains($"\"stdout\":\"{input}\"", text, StringComparison.Ordinal);
        Assert.Contains("\"exited\":true", text, StringComparison.Ordinal);
    }

    private Cordon.Client.CordonClient Client => fixture.Server.Client;

    /// <summary>The result of a step of the suite, which must not have failed.</summary>
    private static JsonElement Step(JsonElement run, string step)
    {
        Assert.True(run.TryGetProperty(step, out var value), $"{step} is missing: {run}");
        Assert.False(value.ValueKind == JsonValueKind.Object && value.TryGetProperty("error", out _), $"{step} failed: {value}");
        return value;
    }

    private static void AssertError(JsonElement run, string step, string type, string message)
    {
        var e = run.GetProperty(step);
        Assert.True(e.ValueKind == JsonValueKind.Object && e.TryGetProperty("error", out _), $"{step} should have failed: {e}");
        Assert.Equal(type, e.GetProperty("error").GetString());
        Assert.Contains(message, e.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    /// <summary>E2B's network options do what they do on E2B: <c>allowInternetAccess: false</c> cuts the sandbox
    /// off, <c>updateNetwork</c> opens a name while all else stays denied, <c>network.allowOut</c> with a deny of all
    /// traffic allows only that name; header transforms (secrets) are refused with a clear error.</summary>
    [Theory]
    [InlineData("e2b")]
    [InlineData("e2b-2.50")]
    public async Task Sdk_NetworkOptions_BehaveAsOnE2b(string sdk)
    {
        TestInternet.EnsureUp();
        var name = "pkgs." + TestInternet.Domain;
        var secret = "v" + Guid.NewGuid().ToString("N");
        var tag = "e2b-" + Guid.NewGuid().ToString("N")[..8];
        var run = await RunSuiteAsync("network", sdk, new Dictionary<string, string>
        {
            ["TESTNET_PUBLIC"] = TestInternet.PublicHost,
            ["TESTNET_NAME"] = name,
            ["TESTNET_SECRET"] = secret,
            ["TESTNET_TAG"] = tag,
        });

        Assert.Contains("exit=7", run.GetProperty("offline").GetString());
        Assert.False(run.GetProperty("offlineInfo").GetProperty("allowInternetAccess").GetBoolean());
        Assert.StartsWith($"hello from {TestInternet.PublicHost} for {name}", run.GetProperty("opened").GetProperty("byName").GetString());
        Assert.Contains("Cordon refused", run.GetProperty("opened").GetProperty("byAddress").GetString());
        Assert.StartsWith($"hello from {TestInternet.PublicHost} for {name}", run.GetProperty("allowList").GetProperty("byName").GetString());
        Assert.Contains("exit=6", run.GetProperty("allowList").GetProperty("other").GetString());

        // Secrets: write-only through the SDK's Secret API, filled in by a transform only on the way out.
        var api = run.GetProperty("secretApi");
        Assert.Equal(1, api.GetProperty("version").GetInt32());
        Assert.Equal("tests", api.GetProperty("metadata").GetProperty("team").GetString());
        Assert.True(api.GetProperty("listed").GetBoolean());
        Assert.True(api.GetProperty("exists").GetBoolean());
        Assert.False(api.GetProperty("missing").GetBoolean());
        Assert.DoesNotContain(secret, api.GetProperty("answers").GetString(), StringComparison.Ordinal);
        var ruled = run.GetProperty("transformRules");
        Assert.StartsWith("recorded", ruled.GetProperty("ruled").GetString());
        Assert.DoesNotContain(secret, ruled.GetProperty("env").GetString(), StringComparison.Ordinal);
        Assert.Contains("${e2b.secrets.token-", ruled.GetProperty("info").GetString(), StringComparison.Ordinal);
        Assert.Contains("exit=6", ruled.GetProperty("other").GetString(), StringComparison.Ordinal); // allowOut still decides
        Assert.StartsWith("recorded", run.GetProperty("updatedRules").GetProperty("ruled").GetString());
        string? Arrived(string path) => TestInternet.RecordedRequests.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).Last(r => r.GetProperty("path").GetString() == path)
            .GetProperty("headers").GetProperty("x-api-key").GetString();
        Assert.Equal(secret, Arrived("/record/" + tag));
        Assert.Equal("v2 " + secret, Arrived($"/record/{tag}-updated"));
        var gone = run.GetProperty("secretGone");
        Assert.True(gone.GetProperty("destroyed").GetBoolean());
        Assert.False(gone.GetProperty("again").GetBoolean());
        Assert.False(gone.GetProperty("exists").GetBoolean());
    }

    /// <summary>Snapshots, forks, pause with and without memory, autoPause with autoResume and volumes, through the
    /// official SDK's own calls.</summary>
    [Theory]
    [InlineData("e2b")]
    [InlineData("e2b-2.50")]
    public async Task Sdk_SnapshotsForksPauseAndVolumes_BehaveAsOnE2b(string sdk)
    {
        var url = fixture.Server.Address.ToString().TrimEnd('/');
        var run = await RunSuiteAsync("persistence", sdk, new Dictionary<string, string> { ["E2B_VOLUME_API_URL"] = url });

        var snapshot = Step(run, "snapshot");
        Assert.StartsWith("snap_", snapshot.GetProperty("snapshotId").GetString());
        Assert.True(snapshot.GetProperty("listed").GetBoolean(), snapshot.ToString());
        Assert.Equal(1, snapshot.GetProperty("mine").GetInt32());
        Assert.Equal("changed\n", Step(run, "fromSnapshot").GetProperty("copy").GetString());
        Assert.Equal("original\n", Step(run, "fromSnapshot").GetProperty("original").GetString());
        Assert.True(Step(run, "deleteSnapshot").GetProperty("deleted").GetBoolean(), Step(run, "deleteSnapshot").ToString());
        var fork = Step(run, "fork");
        Assert.Equal(2, fork.GetProperty("count").GetInt32());
        Assert.Equal(3, fork.GetProperty("distinct").GetInt32());
        Assert.Equal("fork0\n", fork.GetProperty("first").GetString());
        Assert.Equal("original\n", fork.GetProperty("second").GetString());
        Assert.Equal("paused", Step(run, "pauseWithMemory").GetProperty("paused").GetString());
        Assert.Equal("1", Step(run, "pauseWithMemory").GetProperty("sleeping").GetString());
        Assert.Equal("paused", Step(run, "pauseWithoutMemory").GetProperty("paused").GetString());
        Assert.Equal("original\n", Step(run, "pauseWithoutMemory").GetProperty("file").GetString());
        Assert.Equal("0", Step(run, "pauseWithoutMemory").GetProperty("sleeping").GetString());
        var auto = Step(run, "autoPause");
        Assert.Equal("paused", auto.GetProperty("state").GetString());
        Assert.Equal("kept\n", auto.GetProperty("file").GetString());
        Assert.Equal("running", auto.GetProperty("after").GetString());
        var volume = Step(run, "volume");
        Assert.True(volume.TryGetProperty("inSandbox", out _), volume.ToString());
        Assert.Equal("from-sandbox\nfrom-api", volume.GetProperty("inSandbox").GetString());
        Assert.Equal("from-sandbox\n", volume.GetProperty("viaApi").GetString());
        Assert.Equal(["directory:dir", "file:note"], volume.GetProperty("entries").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.Equal(8, volume.GetProperty("stat").GetInt32());
        Assert.True(volume.GetProperty("listed").GetBoolean());
        Assert.Contains("/mnt/v", volume.GetProperty("mounts").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sdk_TemplateBuild_ThenSandboxCreate_HasTheStartCommandAnswering()
    {
        var run = await RunSuiteAsync("templates", "e2b");

        var build = Step(run, "build");
        Assert.True(build.TryGetProperty("logs", out var logs), build.ToString());
        Assert.Contains(logs.EnumerateArray(), l => l.GetString()!.Contains("RUN [\"/bin/sh\",\"-c\",\"echo built > /srv/site/built.txt\"]", StringComparison.Ordinal));
        Assert.Equal([true, false], run.GetProperty("exists").EnumerateArray().Select(e => e.GetBoolean()));
        var sandbox = Step(run, "sandbox");
        Assert.True(sandbox.TryGetProperty("stdout", out var stdout), sandbox.ToString());
        Assert.Equal("built\nhello from a template\nhi from the template\nbuilt.txt\nindex.html\n", stdout.GetString());

        // Unchanged: every step from the cache, and the files are not uploaded again.
        var rebuild = Step(run, "rebuild").GetProperty("logs").EnumerateArray().Select(l => l.GetString()!).ToList();
        Assert.Contains(rebuild, l => l.Contains("Skipping upload of 'site'", StringComparison.Ordinal));
        Assert.Contains(rebuild, l => l.Contains("RUN [", StringComparison.Ordinal) && l.EndsWith("(cached)", StringComparison.Ordinal));
        Assert.DoesNotContain(rebuild, l => l.Contains("RUN [", StringComparison.Ordinal) && !l.EndsWith("(cached)", StringComparison.Ordinal));

        var dockerfile = Step(run, "fromDockerfile");
        Assert.True(dockerfile.TryGetProperty("stdout", out var dockerfileOut), dockerfile.ToString());
        Assert.Equal("from-dockerfile\ndockerfile\n", dockerfileOut.GetString());

        AssertError(run, "failing", "BuildError", "exit code 3");
        Assert.Contains("about to fail", run.GetProperty("failing").GetProperty("message").GetString(), StringComparison.Ordinal);

        // @e2b/cli: template create (a Dockerfile, a start and a ready command), list, delete.
        var cli = Step(run, "cli");
        Assert.True(cli.GetProperty("created").GetInt32() == 0, cli.ToString());
        var cliName = run.GetProperty("build").GetProperty("name").GetString() + "-cli";
        Assert.Contains(cli.GetProperty("listed").EnumerateArray(), t => t.GetString() == cliName);
        Assert.Equal("from-the-cli\n", cli.GetProperty("inside").GetString());
        Assert.Equal(0, cli.GetProperty("deleted").GetInt32());
        Assert.DoesNotContain(cli.GetProperty("after").EnumerateArray(), t => t.GetString() == cliName);
    }

    private Task<JsonElement> RunSuiteAsync(string scenario, string sdk, IReadOnlyDictionary<string, string>? extra = null)
    {
        var url = fixture.Server.Address.ToString().TrimEnd('/');
        var env = new Dictionary<string, string>
        {
            ["E2B_API_URL"] = url,
            ["E2B_SANDBOX_URL"] = url,
            ["E2B_API_KEY"] = ServerFixture.AdminKey,
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }

        return NodeScript.RunAsync("e2b", ["suite.mjs", scenario, sdk], env);
    }
}
