using System.Diagnostics;
using System.Globalization;
using Cordon.Client;
using Cordon.Protocol.Api;

namespace Cordon.Bench;

/// <summary>The code interpreter: context creation, and `1+1` in a warm Python context through the API (IPython in
/// the driver, and the Jupyter kernel as `python3`), against the same work done inside the sandbox: IPython's own
/// run_cell, and the execute → idle round trip made with jupyter_client next to the kernel.</summary>
internal static class CodeBench
{
    /// <summary>Runs when the server's default image is ready (it has the Jupyter kernel); null otherwise.</summary>
    public static async Task<IReadOnlyList<Samples>?> RunAsync(CordonClient client, int iterations)
    {
        var images = await client.ListImagesAsync();
        if (!images.Any(i => i.Name == "default" && i.Status == "ready"))
        {
            return null;
        }

        var create = new Samples("code: create a Python context (IPython ready)");
        var createKernel = new Samples("code: create a `python3` context (Jupyter kernel ready)");
        var createJs = new Samples("code: create a JavaScript context");
        Console.Error.WriteLine("bench: 10 × Python, python3 (kernel) and JavaScript context creation");
        for (var i = 0; i < 10; i++)
        {
            var s = await client.CreateSandboxAsync(new CreateSandboxRequest());
            var stopwatch = Stopwatch.StartNew();
            await client.CreateContextAsync(s.Id, new CreateContextRequestBody { Language = "python" });
            create.Add(stopwatch.Elapsed.TotalMilliseconds);
            stopwatch.Restart();
            await client.CreateContextAsync(s.Id, new CreateContextRequestBody { Language = "python3" });
            createKernel.Add(stopwatch.Elapsed.TotalMilliseconds);
            stopwatch.Restart();
            await client.CreateContextAsync(s.Id, new CreateContextRequestBody { Language = "javascript" });
            createJs.Add(stopwatch.Elapsed.TotalMilliseconds);
            await client.DeleteSandboxAsync(s.Id);
        }

        Console.Error.WriteLine($"bench: {iterations * 2} × `1+1` in warm python and python3 contexts");
        var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest());
        var kernelContext = await client.CreateContextAsync(sandbox.Id, new CreateContextRequestBody { Language = "python3" });
        var warm = await OnePlusOneAsync(client, sandbox.Id, null, "code: `1+1` in a warm Python context (API round trip)", iterations * 2);
        var warmKernel = await OnePlusOneAsync(client, sandbox.Id, kernelContext.Id, "code: `1+1` in a warm `python3` (Jupyter kernel) context", iterations * 2);

        var shell = new Samples("reference: IPython's run_cell(\"1+1\") inside the sandbox");
        var shellScript = $$"""
            import time
            from IPython.core.interactiveshell import InteractiveShell
            shell = InteractiveShell.instance()
            shell.displayhook.write_output_prompt = lambda: None
            shell.displayhook.write_format_data = lambda *a, **k: None
            for i in range(20):
                shell.run_cell("1+1", store_history=True)
            for i in range({{iterations * 2}}):
                t = time.perf_counter()
                shell.run_cell("1+1", store_history=True)
                print((time.perf_counter() - t) * 1000, flush=True)
            """;
        await MeasureInSandboxAsync(client, sandbox.Id, shellScript, shell);

        // The reference: the same execute → idle round trip, made with jupyter_client next to the kernel.
        var reference = new Samples("reference: `1+1` via jupyter_client inside the sandbox");
        var script = $$"""
            import time
            from jupyter_client.manager import start_new_kernel
            km, kc = start_new_kernel(kernel_name="python3")
            for i in range(20):
                kc.execute_interactive("1+1", output_hook=lambda m: None)
            for i in range({{iterations * 2}}):
                t = time.perf_counter()
                kc.execute_interactive("1+1", output_hook=lambda m: None)
                print((time.perf_counter() - t) * 1000)
            km.shutdown_kernel(now=True)
            """;
        await MeasureInSandboxAsync(client, sandbox.Id, script, reference);

        await client.DeleteSandboxAsync(sandbox.Id);
        return [create, createKernel, createJs, warm, shell, warmKernel, reference];
    }

    private static async Task<Samples> OnePlusOneAsync(CordonClient client, string sandboxId, string? contextId, string name, int count)
    {
        var samples = new Samples(name);
        var one = new RunCodeRequestBody { Code = "1+1", ContextId = contextId };
        for (var i = 0; i < 20; i++)
        {
            await client.RunCodeAsync(sandboxId, one);
        }

        for (var i = 0; i < count; i++)
        {
            var stopwatch = Stopwatch.StartNew();
            var result = await client.RunCodeAsync(sandboxId, one);
            samples.Add(stopwatch.Elapsed.TotalMilliseconds);
            if (result.Results.FirstOrDefault()?.Data?["text/plain"].GetString() != "2")
            {
                throw new InvalidOperationException("1+1 did not give 2: " + result.Error?.Value);
            }
        }

        return samples;
    }

    /// <summary>Runs a Python script that prints one duration in milliseconds per line.</summary>
    private static async Task MeasureInSandboxAsync(CordonClient client, string sandboxId, string script, Samples into)
    {
        var measured = await client.ExecAsync(sandboxId, ExecRequestBody.FromArgv("python3", "-c", script) with { TimeoutSeconds = 300 });
        if (measured.ExitCode != 0)
        {
            throw new InvalidOperationException($"{into.Name}: the script failed: {measured.Stderr}");
        }

        foreach (var line in measured.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            into.Add(double.Parse(line, CultureInfo.InvariantCulture));
        }
    }
}
