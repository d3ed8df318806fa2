using System.Diagnostics;
using System.Globalization;
using Cordon.Client;
using Cordon.Protocol.Api;

namespace Cordon.Bench;

/// <summary>The code interpreter: context creation, and `1+1` in a warm Python context through the API,
/// against the same round trip made with jupyter_client inside the sandbox (the kernel's own floor).</summary>
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

        var create = new Samples("code: create a Python context (Jupyter kernel ready)");
        var createJs = new Samples("code: create a JavaScript context");
        Console.Error.WriteLine("bench: 10 × Python and JavaScript context creation");
        for (var i = 0; i < 10; i++)
        {
            var s = await client.CreateSandboxAsync(new CreateSandboxRequest());
            var stopwatch = Stopwatch.StartNew();
            await client.CreateContextAsync(s.Id, new CreateContextRequestBody { Language = "python" });
            create.Add(stopwatch.Elapsed.TotalMilliseconds);
            stopwatch.Restart();
            await client.CreateContextAsync(s.Id, new CreateContextRequestBody { Language = "javascript" });
            createJs.Add(stopwatch.Elapsed.TotalMilliseconds);
            await client.DeleteSandboxAsync(s.Id);
        }

        Console.Error.WriteLine($"bench: {iterations * 2} × `1+1` in a warm Python context");
        var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest());
        var warm = new Samples("code: `1+1` in a warm Python context (API round trip)");
        var one = new RunCodeRequestBody { Code = "1+1" };
        for (var i = 0; i < 20; i++)
        {
            await client.RunCodeAsync(sandbox.Id, one);
        }

        for (var i = 0; i < iterations * 2; i++)
        {
            var stopwatch = Stopwatch.StartNew();
            var result = await client.RunCodeAsync(sandbox.Id, one);
            warm.Add(stopwatch.Elapsed.TotalMilliseconds);
            if (result.Results.FirstOrDefault()?.Data?["text/plain"].GetString() != "2")
            {
                throw new InvalidOperationException("1+1 did not give 2: " + result.Error?.Value);
            }
        }

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
        var measured = await client.ExecAsync(sandbox.Id, ExecRequestBody.FromArgv("python3", "-c", script) with { TimeoutSeconds = 300 });
        foreach (var line in measured.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            reference.Add(double.Parse(line, CultureInfo.InvariantCulture));
        }

        await client.DeleteSandboxAsync(sandbox.Id);
        return [create, createJs, warm, reference];
    }
}
