using System.Diagnostics;
using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Testing;

namespace Cordon.Bench;

/// <summary>An A/B comparison of two live servers that differ in one setting or one build: alternating blocks of
/// create → `echo hi` → destroy, so the machine's drift (tens of percent within minutes on these VMs) falls on
/// both sides alike. Prints each side's median, the ratio B/A and the per-round medians.</summary>
internal static class AbBench
{
    /// <summary>args: <c>ab urlA keyA urlB keyB [rounds] [block]</c>.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        using var a = new CordonClient(new Uri(args[1]), args[2]);
        using var b = new CordonClient(new Uri(args[3]), args[4]);
        var rounds = args.Length > 5 ? int.Parse(args[5]) : 10;
        var block = args.Length > 6 ? int.Parse(args[6]) : 20;
        foreach (var client in new[] { a, b })
        {
            await using var tarball = BusyboxImage.CreateTarball();
            try
            {
                await client.ImportImageAsync("bench-busybox", tarball);
            }
            catch (CordonApiException ex) when (ex.Status == 409)
            {
            }

            // Warm both servers past the JIT's first tiers.
            for (var i = 0; i < 100; i++)
            {
                await CycleAsync(client);
            }
        }

        var all = (A: new Samples("A"), B: new Samples("B"));
        var execs = (A: new Samples("A"), B: new Samples("B"));
        var roundMedians = new List<(double A, double B)>();
        var running = (A: await a.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox", TimeoutSeconds = 3600 }),
                       B: await b.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox", TimeoutSeconds = 3600 }));
        for (var round = 0; round < rounds; round++)
        {
            var (ra, rb) = (new Samples("A"), new Samples("B"));

            // Alternate which side goes first, so neither always runs right after the other's teardown.
            var order = round % 2 == 0
                ? new[] { (a, ra, all.A, running.A.Id, execs.A), (b, rb, all.B, running.B.Id, execs.B) }
                : [(b, rb, all.B, running.B.Id, execs.B), (a, ra, all.A, running.A.Id, execs.A)];
            foreach (var (client, samples, total, sandbox, exec) in order)
            {
                for (var i = 0; i < block; i++)
                {
                    var ms = await CycleAsync(client);
                    samples.Add(ms);
                    total.Add(ms);
                }

                // The exec round trip in a running sandbox, as many times.
                for (var i = 0; i < block; i++)
                {
                    var stopwatch = Stopwatch.StartNew();
                    await client.ExecAsync(sandbox, ExecRequestBody.FromArgv("echo", "hi"));
                    exec.Add(stopwatch.Elapsed.TotalMilliseconds);
                }
            }

            roundMedians.Add((ra.Median, rb.Median));
            Console.Error.WriteLine($"ab: round {round + 1}/{rounds}: A {ra.Median:F1} ms, B {rb.Median:F1} ms");
        }

        await a.DeleteSandboxAsync(running.A.Id);
        await b.DeleteSandboxAsync(running.B.Id);
        Console.WriteLine($"| side | n | create → echo p50 ms | p90 ms | exec round trip p50 ms | p90 ms |");
        Console.WriteLine($"| --- | ---: | ---: | ---: | ---: | ---: |");
        Console.WriteLine($"| A | {all.A.Count} | {all.A.Median:F1} | {all.A.Percentile(90):F1} | {execs.A.Median:F2} | {execs.A.Percentile(90):F2} |");
        Console.WriteLine($"| B | {all.B.Count} | {all.B.Median:F1} | {all.B.Percentile(90):F1} | {execs.B.Median:F2} | {execs.B.Percentile(90):F2} |");
        Console.WriteLine();
        Console.WriteLine($"B/A of the medians: create → echo {all.B.Median / all.A.Median:F3}, exec {execs.B.Median / execs.A.Median:F3}; rounds where B's create → echo was slower: {roundMedians.Count(r => r.B > r.A)} of {rounds}");
        Console.WriteLine("per round (A, B): " + string.Join("; ", roundMedians.Select(r => $"{r.A:F1}, {r.B:F1}")));
        return 0;
    }

    private static async Task<double> CycleAsync(CordonClient client)
    {
        var stopwatch = Stopwatch.StartNew();
        var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox" });
        var result = await client.ExecAsync(sandbox.Id, ExecRequestBody.FromArgv("echo", "hi"));
        var elapsed = stopwatch.Elapsed.TotalMilliseconds;
        if (result.Stdout != "hi\n")
        {
            throw new InvalidOperationException("echo hi printed " + result.Stdout);
        }

        await client.DeleteSandboxAsync(sandbox.Id);
        return elapsed;
    }
}
