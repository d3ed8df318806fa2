using System.Diagnostics;
using System.Formats.Tar;
using Cordon.Testing;

namespace Cordon.Bench;

/// <summary>The same work (`echo hi` in an isolated root) done by other tools, measured in the same run.</summary>
internal static class ReferenceTools
{
    public static async Task<double> TimeAsync(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var elapsed = stopwatch.Elapsed.TotalMilliseconds;
        if (process.ExitCode != 0 || (await output).Trim() != "hi")
        {
            throw new InvalidOperationException($"{program} failed ({process.ExitCode}): {await error}");
        }

        return elapsed;
    }

    public static async Task<int> RunAsync(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        await process.StandardOutput.ReadToEndAsync();
        await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode;
    }

    /// <summary>The busybox test image unpacked as a plain directory, the root every reference tool runs in.</summary>
    public static async Task<string> BusyboxRootAsync()
    {
        var root = Path.Combine(Path.GetTempPath(), "cordon-bench-root");
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }

        Directory.CreateDirectory(root);
        await using var tarball = BusyboxImage.CreateTarball();
        await TarFile.ExtractToDirectoryAsync(tarball, root, overwriteFiles: true);
        return root;
    }

    /// <summary>bubblewrap running <c>echo hi</c> in every namespace over <paramref name="root"/>; milliseconds.</summary>
    public static Task<double> BubblewrapEchoAsync(string root)
        => TimeAsync("/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", root, "/", "--proc", "/proc", "--dev", "/dev", "/bin/echo", "hi");

    /// <summary>A bare crun container doing the same: a bundle over the same root (read-only), every namespace.</summary>
    public static async Task<Samples?> BareCrunAsync(string root, int iterations)
    {
        if (!File.Exists("/usr/bin/crun"))
        {
            return null;
        }

        var bundle = Path.Combine(Path.GetTempPath(), "cordon-bench-bundle");
        Directory.CreateDirectory(bundle);
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), BareConfig(root, "\"/bin/echo\",\"hi\"", "ref"));
        var samples = new Samples("bare crun run: `echo hi` (no userns, no seccomp, root read-only)");
        for (var i = 0; i < iterations; i++)
        {
            samples.Add(await TimeAsync("/usr/bin/crun", "--root", "/run/cordon-bench", "run", "--bundle", bundle, $"ref{i}"));
        }

        return samples;
    }

    /// <summary>The bare container every crun reference runs: <paramref name="args"/> (JSON strings) over
    /// <paramref name="root"/> read-only, in its own cgroup (<c>/cordon-bench/{cgroup}</c>) and pid, network, ipc,
    /// uts and mount namespaces.</summary>
    private static string BareConfig(string root, string args, string cgroup) => $$"""
        {"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":0,"gid":0},"args":[{{args}}],"cwd":"/",
         "env":["PATH=/bin"],"noNewPrivileges":true},
         "root":{"path":"{{root}}","readonly":true},"hostname":"bench",
         "mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
         "linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}],
                  "cgroupsPath":"/cordon-bench/{{cgroup}}" } }
        """;

    /// <summary>The kernel's and crun's own growth with containers, without Cordon: <paramref name="live"/> idle bare
    /// crun containers (each its own cgroup and pid, network, ipc, uts and mount namespaces, as the echo's), then the
    /// same echo as <see cref="BareCrunAsync"/> while they run, the host memory they take, and their delete (16 at a
    /// time).</summary>
    public static async Task<(Samples Echo, double MemoryPerContainerMiB, double DeleteSeconds)?> BareCrunAtScaleAsync(string root, int live, int iterations)
    {
        if (!File.Exists("/usr/bin/crun"))
        {
            return null;
        }

        var bundles = Path.Combine(Path.GetTempPath(), "cordon-bench-idle");
        Directory.CreateDirectory(bundles);
        var before = MemAvailable();
        var deleted = false;
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, live), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
            {
                var bundle = Path.Combine(bundles, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Directory.CreateDirectory(bundle);
                await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), BareConfig(root, "\"/bin/sleep\",\"3600\"", $"idle{i}"));
                // Its stdio on /dev/null: a detached container keeps the runtime's, and a pipe would stay open with it. A
                // start can fail for a moment while the kernel still tears down the sandboxes destroyed just before.
                var error = Path.Combine(bundle, "error");
                for (var attempt = 1; await RunAsync("/bin/sh", "-c", $"exec /usr/bin/crun --root /run/cordon-bench run --detach --bundle {bundle} idle{i} </dev/null >/dev/null 2>{error}") != 0; attempt++)
                {
                    await RunAsync("/usr/bin/crun", "--root", "/run/cordon-bench", "delete", "--force", $"idle{i}");
                    if (attempt == 3)
                    {
                        throw new InvalidOperationException($"bare crun could not start idle container {i}: {File.ReadAllText(error).Trim()}");
                    }

                    await Task.Delay(500);
                }
            });
            await Task.Delay(2000);
            var memory = (before - MemAvailable()) / (double)live / (1 << 20);
            var echo = await BareCrunAsync(root, iterations);

            var delete = Stopwatch.StartNew();
            await DeleteIdleAsync(live);
            deleted = true;
            return (echo!, memory, delete.Elapsed.TotalSeconds);
        }
        finally
        {
            if (!deleted)
            {
                await DeleteIdleAsync(live);
            }

            Directory.Delete(bundles, recursive: true);
        }
    }

    private static Task DeleteIdleAsync(int live)
        => Parallel.ForEachAsync(Enumerable.Range(0, live), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
            await RunAsync("/usr/bin/crun", "--root", "/run/cordon-bench", "delete", "--force", $"idle{i}"));

    /// <summary>The host's MemAvailable, in bytes.</summary>
    public static long MemAvailable()
    {
        var line = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }
}
