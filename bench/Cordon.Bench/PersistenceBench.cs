using System.Diagnostics;
using Cordon.Client;
using Cordon.Protocol.Api;

namespace Cordon.Bench;

/// <summary>Issue 16's targets, each against its reference in the same run: a snapshot of a sandbox that wrote 1 GiB
/// against one that wrote 1 MiB; a fork of 10 against 10 × create → first command; resume → first command against an
/// exec round trip; start of a stopped sandbox → first command against a fresh create → first command.</summary>
internal static class PersistenceBench
{
    private static readonly ExecRequestBody Echo = ExecRequestBody.FromArgv("echo", "hi");

    public static async Task<(IReadOnlyList<Samples> Samples, IReadOnlyList<string> Lines)> RunAsync(CordonClient client, int iterations)
    {
        var lines = new List<string>();
        var samples = new List<Samples>();

        // Snapshots: two sandboxes, one with 1 MiB written, one with 1 GiB; snapshots alternate between them, each
        // followed by a small write (the sandbox works on) and the snapshot's deletion.
        Console.Error.WriteLine("bench: snapshots of a sandbox that wrote 1 MiB and of one that wrote 1 GiB");
        var small = new Samples("persistence: snapshot, 1 MiB written (API round trip)");
        var large = new Samples("persistence: snapshot, 1 GiB written (API round trip)");
        var a = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox", DiskMiB = 4096, TimeoutSeconds = 3600 });
        var b = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox", DiskMiB = 4096, TimeoutSeconds = 3600 });
        await client.ExecAsync(a.Id, ExecRequestBody.FromShell("dd if=/dev/urandom of=/data bs=1M count=1 2>/dev/null; sync"));
        await client.ExecAsync(b.Id, ExecRequestBody.FromShell("dd if=/dev/urandom of=/data bs=1M count=1024 2>/dev/null; sync") with { TimeoutSeconds = 600 });
        for (var i = 0; i < Math.Max(10, iterations / 2); i++)
        {
            foreach (var (sandbox, into) in new[] { (a, small), (b, large) })
            {
                var stopwatch = Stopwatch.StartNew();
                var snapshot = await client.CreateSnapshotAsync(sandbox.Id);
                into.Add(stopwatch.Elapsed.TotalMilliseconds);
                await client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell($"echo {i} >> /log"));
                await client.DeleteSnapshotAsync(snapshot.Id);
            }
        }

        await client.DeleteSandboxAsync(a.Id);
        samples.AddRange([small, large]);
        lines.Add($"| snapshot p50, 1 GiB written vs 1 MiB written | {large.Median:F1} vs {small.Median:F1} ms | {large.Median / small.Median:F2}× |");

        // Fork of 10 (then the first command in each) against create → first command, interleaved.
        Console.Error.WriteLine("bench: fork of 10 → a command in each, against create → first command");
        var fork = new Samples("persistence: fork of 10 → `echo hi` in each");
        var create = new Samples("persistence: create → `echo hi` (reference of the fork)");
        for (var i = 0; i < Math.Max(5, iterations / 10); i++)
        {
            var stopwatch = Stopwatch.StartNew();
            var forks = await client.ForkAsync(b.Id, 10);
            await Task.WhenAll(forks.Select(f => client.ExecAsync(f.Sandbox!.Id, Echo)));
            fork.Add(stopwatch.Elapsed.TotalMilliseconds);
            foreach (var f in forks)
            {
                await client.DeleteSandboxAsync(f.Sandbox!.Id);
            }

            for (var j = 0; j < 2; j++)
            {
                stopwatch.Restart();
                var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox" });
                await client.ExecAsync(sandbox.Id, Echo);
                create.Add(stopwatch.Elapsed.TotalMilliseconds);
                await client.DeleteSandboxAsync(sandbox.Id);
            }
        }

        await client.DeleteSandboxAsync(b.Id);
        samples.AddRange([fork, create]);
        lines.Add($"| fork of 10 → first command in each, p50, vs 10 × create → first command | {fork.Median:F1} vs {10 * create.Median:F1} ms | {fork.Median / (10 * create.Median):F2}× |");

        // Resume → first command against an exec round trip, interleaved in one sandbox.
        Console.Error.WriteLine("bench: resume → first command against exec");
        var resume = new Samples("persistence: resume → `echo hi`");
        var exec = new Samples("persistence: `echo hi` (reference of resume)");
        var paused = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox", TimeoutSeconds = 3600 });
        for (var i = 0; i < 20; i++)
        {
            await client.ExecAsync(paused.Id, Echo);
        }

        for (var i = 0; i < iterations; i++)
        {
            var stopwatch = Stopwatch.StartNew();
            await client.ExecAsync(paused.Id, Echo);
            exec.Add(stopwatch.Elapsed.TotalMilliseconds);
            await client.PauseAsync(paused.Id);
            stopwatch.Restart();
            await client.ResumeAsync(paused.Id);
            await client.ExecAsync(paused.Id, Echo);
            resume.Add(stopwatch.Elapsed.TotalMilliseconds);
        }

        await client.DeleteSandboxAsync(paused.Id);
        samples.AddRange([resume, exec]);
        lines.Add($"| resume → first command p50, vs an exec round trip | {resume.Median:F2} vs {exec.Median:F2} ms | +{resume.Median - exec.Median:F2} ms |");

        // Start of a stopped sandbox → first command against a fresh create → first command, interleaved.
        Console.Error.WriteLine("bench: start of a stopped sandbox → first command against create → first command");
        var start = new Samples("persistence: start (stopped) → `echo hi`");
        var fresh = new Samples("persistence: create → `echo hi` (reference of start)");
        var stopped = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox", TimeoutSeconds = 3600 });
        for (var i = 0; i < Math.Max(10, iterations / 2); i++)
        {
            await client.StopAsync(stopped.Id);
            var stopwatch = Stopwatch.StartNew();
            await client.StartAsync(stopped.Id);
            await client.ExecAsync(stopped.Id, Echo);
            start.Add(stopwatch.Elapsed.TotalMilliseconds);

            stopwatch.Restart();
            var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox" });
            await client.ExecAsync(sandbox.Id, Echo);
            fresh.Add(stopwatch.Elapsed.TotalMilliseconds);
            await client.DeleteSandboxAsync(sandbox.Id);
        }

        await client.DeleteSandboxAsync(stopped.Id);
        samples.AddRange([start, fresh]);
        lines.Add($"| start of a stopped sandbox → first command p50, vs create → first command | {start.Median:F1} vs {fresh.Median:F1} ms | {start.Median / fresh.Median:F2}× |");
        return (samples, lines);
    }
}
