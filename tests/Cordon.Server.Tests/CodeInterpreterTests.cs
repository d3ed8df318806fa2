using System.Buffers.Binary;
using System.Net;
using Cordon.Client;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The code interpreter in real default-image sandboxes: Jupyter's ipykernel for Python, Cordon's
/// drivers for JavaScript, TypeScript and Bash.</summary>
[Collection(DefaultImageCollection.Name)]
public sealed class CodeInterpreterTests(DefaultImageServer fixture)
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    private CordonClient Client => fixture.Server.Client;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private Task<CodeRunResult> RunAsync(TestSandbox sandbox, string code, string? language = null, string? contextId = null, int? timeoutSeconds = null)
        => Client.RunCodeAsync(sandbox.Id, new RunCodeRequestBody { Code = code, Language = language, ContextId = contextId, TimeoutSeconds = timeoutSeconds }, Token);

    private static string MainText(CodeRunResult result)
    {
        Assert.True(result.Status == CodeRunStatus.Ok, $"{result.Status}: {result.Error?.Name} {result.Error?.Value} {result.Stderr}");
        return Assert.Single(result.Results, r => r.IsMainResult == true).Data!["text/plain"].GetString()!;
    }

    [Fact]
    public async Task Python_StateSurvivesBetweenRuns_AndRunsAreCounted()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        var first = await RunAsync(sandbox, "import math\nx = 41\ndef twice(n):\n    return 2 * n\nprint('set', flush=True)");
        var second = await RunAsync(sandbox, "twice(x) + math.floor(0.5)");

        Assert.Equal("set\n", first.Stdout);
        Assert.Equal("default-python", first.ContextId);
        Assert.Equal("82", MainText(second));
        Assert.Equal(first.ExecutionCount + 1, second.ExecutionCount);
    }

    [Fact]
    public async Task Python_MatplotlibPlot_ComesBackAsPngWithoutSavefig()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        var result = await RunAsync(sandbox, "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9, 16])\nplt.title('squares')\nNone");

        Assert.Equal(CodeRunStatus.Ok, result.Status);
        var figure = Assert.Single(result.Results, r => r.Data!.ContainsKey("image/png"));
        Assert.False(figure.IsMainResult);
        var png = Convert.FromBase64String(figure.Data!["image/png"].GetString()!);
        Assert.Equal(PngSignature, png[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(png, 12, 4));
        var width = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16));
        var height = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20));
        Assert.True(width >= 300 && height >= 200, $"{width}x{height}");
        Assert.True(png.Length > 5_000, $"{png.Length} bytes is too small for a plotted line");
    }

    /// <summary>A figure of more than a MiB (12×9 inches, 20,000 points): its event spans several protocol frames,
    /// and neither the figure nor the cell's printed output is lost.</summary>
    [Fact]
    public async Task Python_FigureLargerThanAFrame_ComesBackWholeWithTheCellsOutput()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        var result = await RunAsync(sandbox,
            "import numpy as np, matplotlib.pyplot as plt\n" +
            "rng = np.random.default_rng(1)\n" +
            "plt.figure(figsize=(12, 9)); plt.scatter(rng.random(20000), rng.random(20000), s=1, c=rng.random(20000))\n" +
            "print('plotted', flush=True)", timeoutSeconds: 120);

        Assert.True(result.Status == CodeRunStatus.Ok, $"{result.Status}: {result.Error?.Value} {result.Stderr}");
        Assert.Equal("plotted\n", result.Stdout);
        var png = Convert.FromBase64String(Assert.Single(result.Results, r => r.Data!.ContainsKey("image/png")).Data!["image/png"].GetString()!);
        Assert.True(png.Length > FrameStream.MaxPayload, $"the figure is {png.Length} bytes; the test needs one larger than a frame");
        Assert.Equal(PngSignature, png[..8]);
    }

    [Fact]
    public async Task Files_ListingLargerThanAFrame_ComesBackWhole()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        var listing = await Client.ListFilesAsync(sandbox.Id, "/usr/lib/python3/dist-packages", depth: 3, Token);

        Assert.True(listing.Entries.Count > 2000, $"{listing.Entries.Count} entries");
        Assert.Contains(listing.Entries, e => e.Path == "/usr/lib/python3/dist-packages/numpy/__init__.py");
    }

    [Fact]
    public async Task Python_DataFrame_ComesBackAsHtmlAndText()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        var result = await RunAsync(sandbox, "import pandas as pd\npd.DataFrame({'city': ['Oslo', 'Lima'], 'temp': [3, 19]})");

        var main = Assert.Single(result.Results, r => r.IsMainResult == true);
        Assert.Contains("<table", main.Data!["text/html"].GetString());
        Assert.Contains("Lima", main.Data["text/html"].GetString());
        Assert.Contains("Oslo", main.Data["text/plain"].GetString());
    }

    [Fact]
    public async Task Python_DivisionByZero_IsAnErrorWithTraceback_AndTheContextGoesOn()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        await RunAsync(sandbox, "kept = 'yes'");

        var failed = await RunAsync(sandbox, "def divide(a, b):\n    return a / b\ndivide(1, 0)");
        var after = await RunAsync(sandbox, "kept");

        Assert.Equal(CodeRunStatus.Error, failed.Status);
        Assert.Equal("ZeroDivisionError", failed.Error!.Name);
        Assert.Equal("division by zero", failed.Error.Value);
        Assert.Contains(failed.Error.Traceback, line => line.Contains("return a / b", StringComparison.Ordinal));
        Assert.DoesNotContain(failed.Error.Traceback, line => line.Contains('\u001b', StringComparison.Ordinal));
        Assert.Equal("'yes'", MainText(after));
    }

    [Fact]
    public async Task Python_InfiniteLoop_IsInterruptedByTheTimeout_AndTheContextKeepsItsState()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        await RunAsync(sandbox, "counter = 0");

        var looped = await RunAsync(sandbox, "while True:\n    counter += 1", timeoutSeconds: 2);
        var after = await RunAsync(sandbox, "counter > 0");

        Assert.Equal(CodeRunStatus.Timeout, looped.Status);
        Assert.Equal("TimeoutError", looped.Error!.Name);
        Assert.InRange(looped.DurationMs, 1_900, 30_000);
        Assert.Equal("True", MainText(after));
    }

    [Fact]
    public async Task Contexts_DoNotShareVariables_AndKeepTheirWorkingDirectory()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        var a = await Client.CreateContextAsync(sandbox.Id, new CreateContextRequestBody { Language = "python" }, Token);
        var b = await Client.CreateContextAsync(sandbox.Id, new CreateContextRequestBody { Language = "python", Cwd = "/tmp" }, Token);

        await RunAsync(sandbox, "secret = 'a'", contextId: a.Id);
        var inB = await RunAsync(sandbox, "import os\n('secret' in globals(), os.getcwd())", contextId: b.Id);
        var inA = await RunAsync(sandbox, "secret", contextId: a.Id);

        Assert.NotEqual(a.Id, b.Id);
        Assert.Equal("(False, '/tmp')", MainText(inB));
        Assert.Equal("'a'", MainText(inA));
        var listed = await Client.ListContextsAsync(sandbox.Id, Token);
        Assert.Equal([a.Id, b.Id], listed.Contexts.Select(c => c.Id));
        Assert.All(listed.Contexts, c => Assert.Equal("python", c.Language));
    }

    [Fact]
    public async Task Python_ShellCommandsMagicsAndDescriptorWrites_ArriveInTheirRun()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        var result = await RunAsync(sandbox, "import os, sys\nprint('before')\n!echo from-a-child\nos.write(sys.stdout.fileno(), b'raw\\n')\n%cd /tmp\nprint(os.getcwd())");
        var next = await RunAsync(sandbox, "print('next')");

        // A child's output comes through a pty, as in ipykernel: "\r\n". %cd prints the new directory itself.
        // Bytes written to the descriptor travel apart from print()'s, so only their arrival in the run is fixed.
        Assert.Equal(CodeRunStatus.Ok, result.Status);
        Assert.Equal("before\nfrom-a-child\r\n/tmp\n/tmp\n", result.Stdout.Replace("raw\n", "", StringComparison.Ordinal));
        Assert.Contains("raw\n", result.Stdout, StringComparison.Ordinal);
        Assert.Equal("next\n", next.Stdout);
    }

    [Fact]
    public async Task Python3_ReachesTheJupyterKernel_WithStateAndFigures()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        var context = await Client.CreateContextAsync(sandbox.Id, new CreateContextRequestBody { Language = "python3" }, Token);

        await RunAsync(sandbox, "import matplotlib.pyplot as plt\nx = 20", contextId: context.Id);
        var value = await RunAsync(sandbox, "import ipykernel, sys\n(x + 1, 'ipykernel' in sys.modules and hasattr(get_ipython(), 'kernel'))", contextId: context.Id);
        var plot = await RunAsync(sandbox, "plt.plot([3, 1, 2])\nNone", contextId: context.Id);

        Assert.Equal("python3", context.Kernel);
        Assert.Equal("(21, True)", MainText(value));
        var figure = Assert.Single(plot.Results, r => r.Data!.ContainsKey("image/png"));
        Assert.Equal(PngSignature, Convert.FromBase64String(figure.Data!["image/png"].GetString()!)[..8]);
    }

    [Theory]
    [InlineData("python")]
    [InlineData("python3")]
    public async Task Python_WithoutIPythonOrAKernel_RunsOnPlainPython_WithStateAndFigures(string language)
    {
        // An image with python3 alone: here IPython and jupyter_client are hidden from the context's interpreter.
        await using var sandbox = await fixture.CreateSandboxAsync();
        await sandbox.ShAsync("mkdir -p /opt/bare/IPython /opt/bare/jupyter_client && for m in IPython jupyter_client; do echo 'raise ImportError(\"hidden\")' > /opt/bare/$m/__init__.py; done");
        var context = await Client.CreateContextAsync(sandbox.Id, new CreateContextRequestBody { Language = language, Env = new Dictionary<string, string> { ["PYTHONPATH"] = "/opt/bare" } }, Token);

        await RunAsync(sandbox, "import sys\nx = 6 * 7", contextId: context.Id);

        // An interrupt between runs (one that raced a run's end) leaves the interpreter and its state alone.
        var interrupted = await sandbox.ShAsync("pkill -INT -f 'code-context[ ]driver' && echo sent");
        var value = await RunAsync(sandbox, "(x, 'IPython' in sys.modules)", contextId: context.Id);
        var plot = await RunAsync(sandbox, "import matplotlib.pyplot as plt\nplt.plot([1, 2])", contextId: context.Id);

        Assert.Null(context.Kernel);
        Assert.Equal("sent\n", interrupted.Stdout);
        Assert.Equal("(42, False)", MainText(value));
        var figure = Assert.Single(plot.Results, r => r.Data!.ContainsKey("image/png"));
        Assert.Equal(PngSignature, Convert.FromBase64String(figure.Data!["image/png"].GetString()!)[..8]);
    }

    [Fact]
    public async Task TheAgent_LoadsNoSharedLibrary_WhileContextsRun()
    {
        // The agent is a static binary: a shared library loaded into it brings a second libc that corrupts its
        // memory (once OpenSSL, loaded for random context ids, crashed one sandbox in six). The image has OpenSSL.
        await using var sandbox = await fixture.CreateSandboxAsync();
        await Client.CreateContextAsync(sandbox.Id, new CreateContextRequestBody { Language = "python" }, Token);
        await Client.CreateContextAsync(sandbox.Id, new CreateContextRequestBody { Language = "javascript" }, Token);
        Assert.Equal("2", MainText(await RunAsync(sandbox, "1+1")));

        // Read from the host: the agent is not dumpable, so the sandbox may not read its maps.
        var maps = await File.ReadAllTextAsync($"/proc/{HostProcesses.AgentOf(sandbox.Id)}/maps", Token);

        Assert.Contains("/.cordon/agent", maps);
        Assert.DoesNotContain(maps.Split('\n'), line => System.Text.RegularExpressions.Regex.IsMatch(line, @"\.so(\.[0-9]+)*$"));
    }

    [Fact]
    public async Task JavaScript_KeepsState_ShowsValues_AndAwaitsAtTopLevel()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        await RunAsync(sandbox, "let total = 40; function add(n) { total += n; return total; }", "javascript");
        var added = await RunAsync(sandbox, "console.log('adding'); add(2)", "javascript");
        var awaited = await RunAsync(sandbox, "const later = await new Promise(r => setTimeout(() => r(total + 1), 20));\nlater", "javascript");
        var afterAwait = await RunAsync(sandbox, "later * 2", "javascript");
        var thrown = await RunAsync(sandbox, "null.property", "javascript");

        Assert.Equal("adding\n", added.Stdout);
        Assert.Equal("42", MainText(added));
        Assert.Equal("43", MainText(awaited));
        Assert.Equal("86", MainText(afterAwait));
        Assert.Equal(CodeRunStatus.Error, thrown.Status);
        Assert.Equal("TypeError", thrown.Error!.Name);
    }

    [Fact]
    public async Task TypeScript_TypedCodeRuns_AndKeepsState()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        await RunAsync(sandbox, "interface Point { x: number; y: number }\nconst p: Point = { x: 3, y: 4 };", "typescript");
        var result = await RunAsync(sandbox, "Math.hypot(p.x, p.y) as number", "ts");

        Assert.Equal("5", MainText(result));
        Assert.Equal("default-typescript", result.ContextId);
    }

    [Fact]
    public async Task Bash_KeepsVariablesFunctionsAndDirectory_AndReportsFailures()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        await RunAsync(sandbox, "GREETING=hello\ngreet() { echo \"$GREETING $1\"; }\ncd /tmp", "bash");
        var greeted = await RunAsync(sandbox, "greet world; pwd; echo oops >&2", "bash");
        var failed = await RunAsync(sandbox, "ls /does-not-exist", "bash");

        Assert.Equal(CodeRunStatus.Ok, greeted.Status);
        Assert.Equal("hello world\n/tmp\n", greeted.Stdout);
        Assert.Equal("oops\n", greeted.Stderr);
        Assert.Equal(CodeRunStatus.Error, failed.Status);
        Assert.Contains("No such file", failed.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("python", "import os\nos.environ.get('RUN_ONLY', 'unset')", "'it is set'", "'unset'")]
    [InlineData("javascript", "process.env.RUN_ONLY ?? 'unset'", "'it is set'", "'unset'")]
    [InlineData("bash", "echo ${RUN_ONLY:-unset}", "it is set\n", "unset\n")]
    public async Task RunEnvironment_IsSetForThatRunOnly(string language, string code, string during, string after)
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        var env = new Dictionary<string, string> { ["RUN_ONLY"] = "it is set" };

        var with = await Client.RunCodeAsync(sandbox.Id, new RunCodeRequestBody { Code = code, Language = language, Env = env }, Token);
        var without = await RunAsync(sandbox, code, language);

        Assert.Equal(during, language == "bash" ? with.Stdout : MainText(with));
        Assert.Equal(after, language == "bash" ? without.Stdout : MainText(without));
        Assert.Equal(with.ExecutionCount + 1, without.ExecutionCount);
    }

    [Fact]
    public async Task Bash_EveryByteOfARunArrivesBeforeItsEnd()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        var result = await RunAsync(sandbox, "seq 1 50000; seq 1 3000 >&2", "bash");
        var next = await RunAsync(sandbox, "echo next", "bash");

        Assert.Equal(string.Concat(Enumerable.Range(1, 50000).Select(i => i + "\n")), result.Stdout);
        Assert.Equal(string.Concat(Enumerable.Range(1, 3000).Select(i => i + "\n")), result.Stderr);
        Assert.Equal("next\n", next.Stdout);
    }

    [Fact]
    public async Task Bash_InfiniteLoop_IsInterruptedByTheTimeout_AndKeepsState()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        await RunAsync(sandbox, "KEEP=1", "bash");

        var looped = await RunAsync(sandbox, "while true; do :; done", "bash", timeoutSeconds: 1);
        var slept = await RunAsync(sandbox, "sleep 60", "bash", timeoutSeconds: 1);
        var after = await RunAsync(sandbox, "echo $KEEP", "bash");

        Assert.Equal(CodeRunStatus.Timeout, looped.Status);
        Assert.Equal(CodeRunStatus.Timeout, slept.Status);
        Assert.Equal("1\n", after.Stdout);
    }

    [Fact]
    public async Task Streaming_DeliversOutputAsItHappens_AndEndsWithTheEnd()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        var events = new List<CodeEvent>();

        // The cell waits for a file the test writes only after it has seen the cell's first line: without
        // streaming, that line would arrive only at the end, and the cell would report it never saw the file.
        var code = "import os, time\nprint('ready', flush=True)\nfor _ in range(600):\n    if os.path.exists('/tmp/go'): break\n    time.sleep(0.05)\n" +
            "print('go' if os.path.exists('/tmp/go') else 'never saw /tmp/go', flush=True)\n'done'";
        await foreach (var e in Client.RunCodeStreamAsync(sandbox.Id, new RunCodeRequestBody { Code = code }, Token))
        {
            events.Add(e);
            if (e.Type == CodeEventTypes.Stdout && e.Text!.Contains("ready", StringComparison.Ordinal))
            {
                await Client.WriteFileAsync(sandbox.Id, "/tmp/go", new MemoryStream([1]), Token);
            }
        }

        Assert.Equal("ready\ngo\n", string.Concat(events.Where(e => e.Type == CodeEventTypes.Stdout).Select(e => e.Text)));
        Assert.Equal(["result", "end"], events.Where(e => e.Type != CodeEventTypes.Stdout).Select(e => e.Type));
        Assert.Equal("'done'", events[^2].Data!["text/plain"].GetString());
        Assert.Equal(CodeRunStatus.Ok, events[^1].Status);
    }

    [Fact]
    public async Task Interrupt_StopsARunningCell_AndTheContextGoesOn()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        await RunAsync(sandbox, "before = 1");
        var stream = Client.RunCodeStreamAsync(sandbox.Id, new RunCodeRequestBody { Code = "import time\nprint('sleeping', flush=True)\ntime.sleep(120)" }, Token);
        var events = new List<CodeEvent>();

        await foreach (var e in stream)
        {
            events.Add(e);
            if (e.Type == CodeEventTypes.Stdout)
            {
                await Client.InterruptContextAsync(sandbox.Id, "default-python", Token);
            }
        }

        var after = await RunAsync(sandbox, "before");
        Assert.Equal(CodeRunStatus.Error, events[^1].Status);
        Assert.Contains(events, e => e.Type == CodeEventTypes.Error && e.Name == "KeyboardInterrupt");
        Assert.Equal("1", MainText(after));
    }

    [Fact]
    public async Task AContextWhoseInterpreterDies_IsReportedDead_AndCanBeRestarted()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        var context = await Client.CreateContextAsync(sandbox.Id, new CreateContextRequestBody { Language = "python" }, Token);
        await RunAsync(sandbox, "lost = True", contextId: context.Id);

        var died = await RunAsync(sandbox, "import os\nos._exit(1)", contextId: context.Id);
        var state = await Client.GetContextAsync(sandbox.Id, context.Id, Token);
        var refused = await Assert.ThrowsAsync<CordonApiException>(() => RunAsync(sandbox, "1", contextId: context.Id));
        await Client.RestartContextAsync(sandbox.Id, context.Id, Token);
        var fresh = await RunAsync(sandbox, "'lost' in globals()", contextId: context.Id);

        Assert.Equal(CodeRunStatus.Died, died.Status);
        Assert.Equal(ContextStates.Dead, state.State);
        Assert.Contains("exited with status 1", state.ExitReason, StringComparison.Ordinal);
        Assert.Equal(409, refused.Status);
        Assert.Contains("Restart it", refused.Message, StringComparison.Ordinal);
        Assert.Equal("False", MainText(fresh));
    }

    [Fact]
    public async Task DeletedContext_IsGone()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        var context = await Client.CreateContextAsync(sandbox.Id, new CreateContextRequestBody { Language = "bash" }, Token);

        await Client.DeleteContextAsync(sandbox.Id, context.Id, Token);

        var gone = await Assert.ThrowsAsync<CordonApiException>(() => RunAsync(sandbox, "echo", contextId: context.Id));
        Assert.Equal(404, gone.Status);
        Assert.Equal("context_not_found", gone.Code);
        Assert.Empty((await Client.ListContextsAsync(sandbox.Id, Token)).Contexts);
    }

    [Theory]
    [InlineData("{\"language\":\"python\"}", 400, "invalid_request", "code is missing")]
    [InlineData("{\"code\":\"1\",\"language\":\"../../bin/sh\"}", 400, "invalid_request", "not a language name")]
    [InlineData("{\"code\":\"1\",\"language\":\"cobol\"}", 400, "invalid_request", "no Jupyter kernel for 'cobol'")]
    [InlineData("{\"code\":\"1\",\"contextId\":\"ctx-000000000000\"}", 404, "context_not_found", "no code context")]
    [InlineData("{\"code\":\"1\",\"timeoutSeconds\":0}", 400, "invalid_request", "timeoutSeconds")]
    public async Task BadRequests_GetProblemDetailsThatSayWhatToDo(string body, int status, string code, string message)
    {
        await using var sandbox = await fixture.CreateSandboxAsync();

        using var response = await fixture.Server.Http.PostAsync($"/v1/sandboxes/{sandbox.Id}/code", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Token);

        var problem = await ProblemAssert.IsProblemAsync(response, (HttpStatusCode)status, code);
        Assert.Contains(message, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnImageWithoutTheInterpreter_SaysWhatIsMissing()
    {
        await using var sandbox = await fixture.Server.CreateSandboxAsync();

        var missing = await Assert.ThrowsAsync<CordonApiException>(() => RunAsync(sandbox, "1", "python"));

        Assert.Equal(400, missing.Status);
        Assert.Contains("python3", missing.Message, StringComparison.Ordinal);
    }
}
