using System.Diagnostics;
using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using Cordon.Bench;
using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Testing;

// Usage: Cordon.Bench <server url> <api key> [iterations] [persistence|templates]
//        Cordon.Bench <server url> <api key> scale [live levels, e.g. 500,2000]
//        Cordon.Bench ab <url A> <key A> <url B> <key B> [rounds] [block]
// Measures a live Cordon server, then the same work with bubblewrap, bare crun and podman in this run; or
// compares two servers in alternating blocks (bench/ab).
if (args[0] == "ab")
{
    return await AbBench.RunAsync(args);
}

var url = new Uri(args[0]);
var key = args[1];
var iterations = args.Length > 2 && int.TryParse(args[2], out var asked) ? asked : 100;
using var client = new CordonClient(url, key);
var results = new List<Samples>();
var notes = new List<string>();

Console.Error.WriteLine("bench: importing the busybox image");
await using (var tarball = BusyboxImage.CreateTarball())
{
    try
    {
        await client.ImportImageAsync("bench-busybox", tarball);
    }
    catch (CordonApiException ex) when (ex.Status == 409)
    {
    }
}

// Scale on one box: its own run (thousands of sandboxes), levels of idle sandboxes as asked.
if (args.Length > 2 && args[2] == "scale")
{
    int[] levels = args.Length > 3 ? [0, .. args[3].Split(',').Select(int.Parse)] : [0, 500, 2000];
    using var http = new HttpClient { BaseAddress = url, DefaultRequestHeaders = { { "Authorization", "Bearer " + key } } };
    var lines = await ScaleBench.RunAsync(client, http, levels, TimeSpan.FromSeconds(15));
    Console.WriteLine($"Cordon scale benchmark, {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}");
    Console.WriteLine();
    Console.WriteLine("| scale | value | vs reference |");
    Console.WriteLine("| --- | ---: | ---: |");
    foreach (var line in lines)
    {
        Console.WriteLine(line);
    }

    return 0;
}

// Only the persistence or the templates targets (quicker, while working on them).
if (args.Length > 3 && args[3] is "persistence" or "templates")
{
    var only = args[3] == "persistence"
        ? await PersistenceBench.RunAsync(client, iterations)
        : await TemplatesBench.RunAsync(client, iterations, Environment.GetEnvironmentVariable("CORDON_BENCH_REGISTRY"));
    foreach (var s in only.Samples)
    {
        Console.WriteLine($"| {s.Name} | {s.Count} | {s.Median:F1} | {s.Percentile(99):F1} |");
    }

    foreach (var line in only.Lines)
    {
        Console.WriteLine(line);
    }

    return 0;
}

// "Cold" is the sandbox's start (nothing is created ahead). The server is measured twice: just started, while
// the JIT is still compiling its hot paths (a few hundred creates), and warm, as a long-running server is.
const int serverWarmUp = 300;
var create = new Samples("cordon: create → `echo hi` finished (cold sandbox, warm server)");
var createOnly = new Samples("cordon: … of which create answered");
var firstExec = new Samples("cordon: … of which the first `echo hi`");
var freshCreate = new Samples($"cordon: the same on a server just started (its creates 6 – {5 + iterations})");
var exec = new Samples("cordon: `echo hi` in a running sandbox (API round trip)");
var destroy = new Samples("cordon: destroy");
var echo = ExecRequestBody.FromArgv("echo", "hi");

// One create → echo → destroy: (create → echo finished, of which create, destroy) in milliseconds.
async Task<(double Total, double Created, double Destroyed)> CreateEchoDestroyAsync()
{
    var stopwatch = Stopwatch.StartNew();
    var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox" });
    var created = stopwatch.Elapsed.TotalMilliseconds;
    var result = await client.ExecAsync(sandbox.Id, echo);
    var total = stopwatch.Elapsed.TotalMilliseconds;
    if (result.Stdout != "hi\n")
    {
        throw new InvalidOperationException("echo hi printed " + result.Stdout);
    }

    stopwatch.Restart();
    await client.DeleteSandboxAsync(sandbox.Id);
    return (total, created, stopwatch.Elapsed.TotalMilliseconds);
}

// The first creates of this client process, not counted.
for (var i = 0; i < 5; i++)
{
    await CreateEchoDestroyAsync();
}

Console.Error.WriteLine($"bench: {iterations} × create, echo, destroy on the server just started");
for (var i = 0; i < iterations; i++)
{
    freshCreate.Add((await CreateEchoDestroyAsync()).Total);
}

Console.Error.WriteLine($"bench: warming the server up to {serverWarmUp} creates, then {iterations} × create, echo, destroy");
for (var i = 5 + iterations; i < serverWarmUp; i++)
{
    await CreateEchoDestroyAsync();
}

for (var i = 0; i < iterations; i++)
{
    var (total, created, destroyed) = await CreateEchoDestroyAsync();
    create.Add(total);
    createOnly.Add(created);
    firstExec.Add(total - created);
    destroy.Add(destroyed);
}

Console.Error.WriteLine($"bench: {iterations * 5} × exec in one sandbox");
var running = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox" });
for (var i = 0; i < 20; i++)
{
    await client.ExecAsync(running.Id, echo);
}

for (var i = 0; i < iterations * 5; i++)
{
    var stopwatch = Stopwatch.StartNew();
    await client.ExecAsync(running.Id, echo);
    exec.Add(stopwatch.Elapsed.TotalMilliseconds);
}

await client.DeleteSandboxAsync(running.Id);
results.AddRange([create, createOnly, firstExec, freshCreate, exec, destroy]);

var code = await CodeBench.RunAsync(client, iterations);
if (code is null)
{
    notes.Add("The code interpreter was not measured: the server's default image is not ready.");
}
else
{
    results.AddRange(code);
}

var network = await NetworkBench.RunAsync(client, iterations);
if (network is null)
{
    notes.Add("Networks were not measured: the test internet (tests/testnet/up, which bench/run starts) is not up.");
}
else
{
    results.AddRange(network.Value.Samples);
}

var persistence = await PersistenceBench.RunAsync(client, iterations);
results.AddRange(persistence.Samples);

var templates = await TemplatesBench.RunAsync(client, iterations, Environment.GetEnvironmentVariable("CORDON_BENCH_REGISTRY"));
results.AddRange(templates.Samples);

// Idle memory: 20 sandboxes (with the server's default network, the internet), measured three ways.
const int idleCount = 20;
Console.Error.WriteLine($"bench: idle memory of {idleCount} sandboxes");
GC.Collect();
await Task.Delay(1000);
var availableBefore = ReferenceTools.MemAvailable();
var idle = new List<SandboxInfo>();
for (var i = 0; i < idleCount; i++)
{
    idle.Add(await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox" }));
}

await Task.Delay(2000);
var availableAfter = ReferenceTools.MemAvailable();
double cgroupBytes = 0, agentPss = 0, agentRss = 0;
foreach (var s in idle)
{
    var metrics = JsonDocument.Parse(await new HttpClient { DefaultRequestHeaders = { { "Authorization", "Bearer " + key } } }
        .GetStringAsync(new Uri(url, $"/v1/sandboxes/{s.Id}/metrics"))).RootElement;
    cgroupBytes += metrics.GetProperty("memoryBytes").GetInt64();
    foreach (var pid in HostPids(s.Id))
    {
        var (rss, pss) = Smaps(pid);
        agentRss += rss;
        agentPss += pss;
    }
}

foreach (var s in idle)
{
    await client.DeleteSandboxAsync(s.Id);
}

var mib = 1024.0 * 1024.0;
var memoryLines = new[]
{
    $"| host MemAvailable drop per idle sandbox | {(availableBefore - availableAfter) / idleCount / mib:F2} MiB |",
    $"| sandbox cgroup memory (charged to it, incl. its page cache) | {cgroupBytes / idleCount / mib:F2} MiB |",
    $"| agent process RSS / PSS | {agentRss / idleCount / mib:F2} / {agentPss / idleCount / mib:F2} MiB |",
};

// References, same machine, same run, same busybox root.
var root = await ReferenceTools.BusyboxRootAsync();

if (File.Exists("/usr/bin/bwrap"))
{
    var bwrap = new Samples("bubblewrap: `echo hi` (all namespaces, busybox root)");
    for (var i = 0; i < iterations; i++)
    {
        bwrap.Add(await ReferenceTools.BubblewrapEchoAsync(root));
    }

    results.Add(bwrap);
}

var crunSamples = await ReferenceTools.BareCrunAsync(root, iterations);
if (crunSamples is not null)
{
    results.Add(crunSamples);
}

if (File.Exists("/usr/bin/podman"))
{
    var image = "localhost/cordon-bench-busybox";
    var tar = Path.Combine(Path.GetTempPath(), "cordon-bench-root.tar");
    await using (var tarball = BusyboxImage.CreateTarball())
    await using (var file = File.Create(tar))
    {
        await tarball.CopyToAsync(file);
    }

    if (await ReferenceTools.RunAsync("/usr/bin/podman", "import", tar, image) == 0)
    {
        var podman = new Samples("podman run (crun): `echo hi`");
        // Limits below any host's: podman's defaults (nofile 1048576, nproc 32768) need CAP_SYS_RESOURCE to
        // raise the hard limits, which a root without it (as in some VMs and containers) cannot.
        string[] run = ["run", "--rm", "--network=none", "--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024", image, "/bin/echo", "hi"];
        try
        {
            await ReferenceTools.TimeAsync("/usr/bin/podman", run);
            for (var i = 0; i < Math.Min(iterations, 20); i++)
            {
                podman.Add(await ReferenceTools.TimeAsync("/usr/bin/podman", run));
            }

            results.Add(podman);
        }
        catch (InvalidOperationException ex)
        {
            notes.Add("podman was not measured: " + ex.Message.Trim());
        }
    }
    else
    {
        notes.Add("podman could not import the reference image; podman was not measured.");
    }
}

var report = new StringBuilder();
report.AppendLine($"Cordon benchmark, {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}");
report.AppendLine();
report.AppendLine("| measurement | n | p50 ms | p99 ms | p50 vs cordon create |");
report.AppendLine("| --- | ---: | ---: | ---: | ---: |");
foreach (var s in results)
{
    report.AppendLine($"| {s.Name} | {s.Count} | {s.Median:F1} | {s.Percentile(99):F1} | {s.Median / create.Median:F2}× |");
}

report.AppendLine();
report.AppendLine("| idle memory | per sandbox |");
report.AppendLine("| --- | ---: |");
foreach (var line in memoryLines)
{
    report.AppendLine(line);
}

if (network is { } measured)
{
    report.AppendLine();
    report.AppendLine("| network | value | vs reference |");
    report.AppendLine("| --- | ---: | ---: |");
    foreach (var line in measured.Lines)
    {
        report.AppendLine(line);
    }

    var none = measured.Samples[0].Median;
    report.AppendLine($"| create → `echo hi` p50, `internet` vs `none` | {measured.Samples[1].Median:F1} vs {none:F1} ms | {measured.Samples[1].Median / none:F2}× |");
}

report.AppendLine();
report.AppendLine("| persistence | value | vs reference |");
report.AppendLine("| --- | ---: | ---: |");
foreach (var line in persistence.Lines)
{
    report.AppendLine(line);
}

report.AppendLine();
report.AppendLine("| templates | value | vs reference |");
report.AppendLine("| --- | ---: | ---: |");
foreach (var line in templates.Lines)
{
    report.AppendLine(line);
}

foreach (var note in notes)
{
    report.AppendLine().AppendLine(note);
}

Console.WriteLine(report);
return 0;


static IEnumerable<int> HostPids(string id)
{
    foreach (var file in new[] { $"/sys/fs/cgroup/pids/cordon/{id}/cgroup.procs", $"/sys/fs/cgroup/cordon/{id}/cgroup.procs" })
    {
        if (File.Exists(file))
        {
            return File.ReadAllLines(file).Where(l => l.Length > 0).Select(int.Parse).ToList();
        }
    }

    return [];
}

static (long Rss, long Pss) Smaps(int pid)
{
    long rss = 0, pss = 0;
    foreach (var line in File.ReadLines($"/proc/{pid}/smaps_rollup"))
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts[0] == "Rss:")
        {
            rss = long.Parse(parts[1]) * 1024;
        }
        else if (parts[0] == "Pss:")
        {
            pss = long.Parse(parts[1]) * 1024;
        }
    }

    return (rss, pss);
}
