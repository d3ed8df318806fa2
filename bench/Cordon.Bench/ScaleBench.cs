using System.Diagnostics;
using Cordon.Client;
using Cordon.Protocol.Api;

namespace Cordon.Bench;

/// <summary>Scale on one box (<c>./cordon bench scale</c>): sustained create → echo → destroy cycles at 1, 4 and 16
/// clients; the same operations with 0, 500 and 2,000 idle sandboxes already live; idle memory per sandbox; the
/// destroy of all of them; bubblewrap's and bare crun's rates in the same run.</summary>
internal static class ScaleBench
{
    private static readonly ExecRequestBody Echo = ExecRequestBody.FromArgv("echo", "hi");

    /// <summary>Idle sandboxes ask for the least disk: a layer promises its size, and 2,000 of the default 2 GiB
    /// would be more than most hosts can promise.</summary>
    private static readonly CreateSandboxRequest Idle = new() { Image = "bench-busybox", DiskMiB = 16, MemoryMiB = 64 };

    private static readonly CreateSandboxRequest Cycle = new() { Image = "bench-busybox", DiskMiB = 64 };

    public static async Task<IReadOnlyList<string>> RunAsync(CordonClient client, HttpClient http, int[] levels, TimeSpan window)
    {
        var lines = new List<string>();
        lines.AddRange(await PoolsAsync(client, http));
        var mountsEmpty = MountEntries();

        // Sustained cycles on an empty server, at 1, 4 and 16 clients.
        // Warm-up, not counted: right after a start the runtime is still compiling the hot paths at tier 1 (measured:
        // 12 % of the machine 60 cycles after start, nothing after ~500), which a long-running server has done.
        await CyclesAsync(client, 4, TimeSpan.FromSeconds(12));
        var rates = new Dictionary<int, (double Rate, Samples Latency)>();
        foreach (var clients in new[] { 1, 4, 16 })
        {
            Console.Error.WriteLine($"bench scale: cycles with {clients} client(s) for {window.TotalSeconds:0} s");
            rates[clients] = await CyclesAsync(client, clients, window);
        }

        var cpuPerCycle = await CpuPerCycleAsync(client);

        // The same operations as idle sandboxes accumulate.
        var idle = new List<string>();
        var probe = await client.CreateSandboxAsync(Cycle);
        var perLevel = new List<(int Live, Samples Create, Samples Exec, Samples Pause, Samples Resume, double MemoryPerSandbox, int Mounts, double Unshare, double FillRate)>();
        GC.Collect();
        await Task.Delay(1000);
        var availableEmpty = ReferenceTools.MemAvailable();
        foreach (var level in levels)
        {
            Console.Error.WriteLine($"bench scale: growing to {level} idle sandboxes");
            var fill = Stopwatch.StartNew();
            var added = level - idle.Count;
            await Parallel.ForEachAsync(Enumerable.Range(0, added), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (_, ct) =>
            {
                var s = await client.CreateSandboxAsync(Idle, ct);
                lock (idle)
                {
                    idle.Add(s.Id);
                }
            });
            var fillRate = added > 0 ? added / fill.Elapsed.TotalSeconds : double.NaN;
            var grown = Stopwatch.StartNew();
            await Task.Delay(2000); // their agents finish starting

            Console.Error.WriteLine($"bench scale: measuring with {idle.Count} live");
            var create = new Samples($"create → `echo hi` finished, {level} live");
            for (var i = 0; i < 40; i++)
            {
                create.Add((await CycleAsync(client)).Total);
            }

            var exec = new Samples($"`echo hi` round trip, {level} live");
            for (var i = 0; i < 100; i++)
            {
                var stopwatch = Stopwatch.StartNew();
                await client.ExecAsync(probe.Id, Echo);
                exec.Add(stopwatch.Elapsed.TotalMilliseconds);
            }

            var pause = new Samples($"pause, {level} live");
            var resume = new Samples($"resume, {level} live");
            for (var i = 0; i < 40; i++)
            {
                var stopwatch = Stopwatch.StartNew();
                await client.PauseAsync(probe.Id);
                pause.Add(stopwatch.Elapsed.TotalMilliseconds);
                stopwatch.Restart();
                await client.ResumeAsync(probe.Id);
                resume.Add(stopwatch.Elapsed.TotalMilliseconds);
            }

            // Idle sandboxes: an agent gives back what it does not need after 10 s without a request.
            await Task.Delay(TimeSpan.FromSeconds(12) - TimeSpan.FromTicks(Math.Min(grown.Elapsed.Ticks, TimeSpan.FromSeconds(12).Ticks)));
            var memory = level > 0 ? (availableEmpty - ReferenceTools.MemAvailable()) / (double)level / (1 << 20) : double.NaN;
            perLevel.Add((level, create, exec, pause, resume, memory, MountEntries(), UnshareMs(), fillRate));
        }

        Console.Error.WriteLine($"bench scale: destroying {idle.Count}");
        var destroy = Stopwatch.StartNew();
        await Parallel.ForEachAsync(idle, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (id, ct) => await client.DeleteSandboxAsync(id, ct));
        var destroyed = destroy.Elapsed.TotalSeconds;
        await client.DeleteSandboxAsync(probe.Id);

        // References in the same run: sequential and two at a time (the machine's cores).
        Console.Error.WriteLine("bench scale: bubblewrap and bare crun");
        var root = await ReferenceTools.BusyboxRootAsync();
        var bwrapRate = File.Exists("/usr/bin/bwrap") ? await RateAsync(() => ReferenceTools.BubblewrapEchoAsync(root), window) : double.NaN;
        var crun = await ReferenceTools.BareCrunAsync(root, 200);
        var crunRate = crun is null ? double.NaN : 1000 / crun.Median;
        Console.Error.WriteLine($"bench scale: bare crun with {idle.Count} idle containers");
        var bareAtScale = idle.Count > 0 ? await ReferenceTools.BareCrunAtScaleAsync(root, idle.Count, 100) : null;

        var best = rates.MaxBy(r => r.Value.Rate);
        lines.Add($"| sustained cycles/s, 1 / 4 / 16 clients | {rates[1].Rate:F0} / {rates[4].Rate:F0} / {rates[16].Rate:F0} (p50 {rates[1].Latency.Median:F1} / {rates[4].Latency.Median:F1} / {rates[16].Latency.Median:F1} ms) | best {best.Value.Rate / crunRate:F2}× bare crun's {crunRate:F0}/s; {best.Value.Rate / bwrapRate:F2}× bubblewrap's {bwrapRate:F0}/s |");
        lines.Add($"| CPU per cycle, whole machine (1 client) | {cpuPerCycle:F1} ms | |");
        var empty = perLevel[0];
        foreach (var level in perLevel.Skip(1))
        {
            lines.Add($"| create → `echo` p50, {level.Live} live vs 0 | {level.Create.Median:F1} vs {empty.Create.Median:F1} ms | {level.Create.Median / empty.Create.Median:F2}× |");
            lines.Add($"| exec p50, {level.Live} live vs 0 | {level.Exec.Median:F2} vs {empty.Exec.Median:F2} ms | {level.Exec.Median / empty.Exec.Median:F2}× |");
            lines.Add($"| pause / resume p50, {level.Live} live vs 0 | {level.Pause.Median:F2} / {level.Resume.Median:F2} vs {empty.Pause.Median:F2} / {empty.Resume.Median:F2} ms | {level.Pause.Median / empty.Pause.Median:F2}× / {level.Resume.Median / empty.Resume.Median:F2}× |");
            lines.Add($"| host memory per idle sandbox, {level.Live} live | {level.MemoryPerSandbox:F2} MiB | |");
            lines.Add($"| host mount table, {level.Live} live (empty: {mountsEmpty}) | {level.Mounts} entries; `unshare -m true` {level.Unshare:F1} vs {empty.Unshare:F1} ms | {level.Unshare / empty.Unshare:F2}× |");
            lines.Add($"| creates/s while growing to {level.Live} (8 clients) | {level.FillRate:F0} | |");
        }

        lines.Add($"| destroy of {idle.Count} (16 clients) | {destroyed:F1} s | |");
        if (bareAtScale is { } bare && crun is not null)
        {
            // What the kernel and the runtime alone do with as many containers (no user namespace, seccomp, network
            // device, writable layer or agent): the floor under Cordon's own growth.
            lines.Add($"| reference: bare crun `echo hi` p50, {idle.Count} idle bare containers live vs 0 | {bare.Echo.Median:F1} vs {crun.Median:F1} ms | {bare.Echo.Median / crun.Median:F2}× |");
            lines.Add($"| reference: host memory per idle bare crun container ({idle.Count} live) | {bare.MemoryPerContainerMiB:F2} MiB | |");
            lines.Add($"| reference: bare crun delete of {idle.Count} (16 at a time) | {bare.DeleteSeconds:F1} s | |");
        }

        return lines;
    }

    /// <summary>Warm pools: a claim → first command against bubblewrap's `echo` in the same run; the first
    /// `runCode('1+1')` of a pooled sandbox of the default image against a cold one's.</summary>
    private static async Task<IReadOnlyList<string>> PoolsAsync(CordonClient client, HttpClient http)
    {
        Console.Error.WriteLine("bench scale: warm pools");
        var root = await ReferenceTools.BusyboxRootAsync();
        var bwrap = new Samples("bubblewrap echo");
        var claim = new Samples("claim → echo");
        await SetPoolAsync(http, "bench-busybox", 4);
        for (var i = 0; i < 40; i++)
        {
            await WaitReadyAsync(http, "bench-busybox", 4);
            var stopwatch = Stopwatch.StartNew();
            var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox" });
            await client.ExecAsync(sandbox.Id, Echo);
            claim.Add(stopwatch.Elapsed.TotalMilliseconds);
            await client.DeleteSandboxAsync(sandbox.Id);
            if (File.Exists("/usr/bin/bwrap"))
            {
                bwrap.Add(await ReferenceTools.BubblewrapEchoAsync(root));
            }
        }

        await SetPoolAsync(http, "bench-busybox", 0);
        var lines = new List<string>
        {
            $"| warm-pool claim → `echo hi` finished p50 vs bubblewrap's `echo` | {claim.Median:F1} vs {bwrap.Median:F1} ms | {claim.Median / bwrap.Median:F2}× |",
        };

        // The default image has the code interpreter; its pool starts each sandbox's Python context ahead.
        var pooled = new Samples("pooled runCode");
        var cold = new Samples("cold runCode");
        var code = new RunCodeRequestBody { Code = "1+1" };
        try
        {
            await SetPoolAsync(http, "default", 2);
            for (var i = 0; i < 15; i++)
            {
                await WaitReadyAsync(http, "default", 2);
                var stopwatch = Stopwatch.StartNew();
                var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "default" });
                await client.RunCodeAsync(sandbox.Id, code);
                pooled.Add(stopwatch.Elapsed.TotalMilliseconds);
                await client.DeleteSandboxAsync(sandbox.Id);

                stopwatch.Restart();
                sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "default", MemoryMiB = 1024 }); // not the pool's shape: cold
                await client.RunCodeAsync(sandbox.Id, code);
                cold.Add(stopwatch.Elapsed.TotalMilliseconds);
                await client.DeleteSandboxAsync(sandbox.Id);
            }

            await SetPoolAsync(http, "default", 0);
            lines.Add($"| pooled sandbox of the default image: create → first `runCode('1+1')` p50 vs a cold one | {pooled.Median:F1} vs {cold.Median:F1} ms | {pooled.Median / cold.Median:F2}× |");
        }
        catch (CordonApiException ex)
        {
            lines.Add($"| pooled `runCode` | not measured: {ex.Message} | |");
        }

        return lines;
    }

    private static async Task SetPoolAsync(HttpClient http, string image, int size)
    {
        using var response = await http.PutAsync($"/v1/pools/{image}", new StringContent($"{{\"size\":{size}}}", System.Text.Encoding.UTF8, "application/json"));
        if (!response.IsSuccessStatusCode)
        {
            throw new CordonApiException((int)response.StatusCode, "pool", await response.Content.ReadAsStringAsync());
        }
    }

    private static async Task WaitReadyAsync(HttpClient http, string image, int ready)
    {
        for (var i = 0; i < 1200; i++)
        {
            var pools = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/v1/pools")).RootElement;
            if (pools.EnumerateArray().Any(p => p.GetProperty("image").GetString() == image && p.GetProperty("ready").GetInt32() >= ready))
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new InvalidOperationException($"the pool of {image} did not fill");
    }

    /// <summary>Create → echo → destroy cycles from <paramref name="clients"/> concurrent clients for a while.</summary>
    private static async Task<(double Rate, Samples Latency)> CyclesAsync(CordonClient client, int clients, TimeSpan window)
    {
        var latency = new Samples($"cycle, {clients} clients");
        var stopwatch = Stopwatch.StartNew();
        var done = 0;
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            while (stopwatch.Elapsed < window)
            {
                var (total, _) = await CycleAsync(client);
                lock (latency)
                {
                    latency.Add(total);
                    done++;
                }
            }
        }));
        return (done / stopwatch.Elapsed.TotalSeconds, latency);
    }

    /// <summary>One create → echo → destroy: (create → echo finished, destroy) in milliseconds.</summary>
    private static async Task<(double Total, double Destroy)> CycleAsync(CordonClient client)
    {
        var stopwatch = Stopwatch.StartNew();
        var sandbox = await client.CreateSandboxAsync(Cycle);
        var result = await client.ExecAsync(sandbox.Id, Echo);
        var total = stopwatch.Elapsed.TotalMilliseconds;
        if (result.Stdout != "hi\n")
        {
            throw new InvalidOperationException("echo hi printed " + result.Stdout);
        }

        stopwatch.Restart();
        await client.DeleteSandboxAsync(sandbox.Id);
        return (total, stopwatch.Elapsed.TotalMilliseconds);
    }

    /// <summary>The whole machine's CPU time (user + system, all processes, from /proc/stat) per sequential cycle.</summary>
    private static async Task<double> CpuPerCycleAsync(CordonClient client)
    {
        const int cycles = 100;
        var before = BusyJiffies();
        for (var i = 0; i < cycles; i++)
        {
            await CycleAsync(client);
        }

        await Task.Delay(500); // the destroys' cleanup runs in the background
        return (BusyJiffies() - before) * 10.0 / cycles; // USER_HZ is 100
    }

    private static long BusyJiffies()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
        return fields[0] + fields[1] + fields[2] + fields[5] + fields[6]; // user nice system irq softirq
    }

    private static async Task<double> RateAsync(Func<Task<double>> once, TimeSpan window)
    {
        var best = 0.0;
        foreach (var parallel in new[] { 1, 2 })
        {
            var stopwatch = Stopwatch.StartNew();
            var done = 0;
            await Task.WhenAll(Enumerable.Range(0, parallel).Select(async _ =>
            {
                while (stopwatch.Elapsed < window / 2)
                {
                    await once();
                    Interlocked.Increment(ref done);
                }
            }));
            best = Math.Max(best, done / stopwatch.Elapsed.TotalSeconds);
        }

        return best;
    }

    private static int MountEntries() => File.ReadLines("/proc/self/mountinfo").Count();

    /// <summary>What a new mount namespace costs now (it copies the caller's mount table): median of 20.</summary>
    private static double UnshareMs()
    {
        var samples = new Samples("unshare -m");
        for (var i = 0; i < 20; i++)
        {
            var stopwatch = Stopwatch.StartNew();
            using var process = Process.Start("/usr/bin/unshare", ["-m", "/bin/true"]);
            process.WaitForExit();
            samples.Add(stopwatch.Elapsed.TotalMilliseconds);
        }

        return samples.Median;
    }
}
