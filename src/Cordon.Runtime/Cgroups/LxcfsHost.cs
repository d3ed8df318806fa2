using System.Diagnostics;
using Cordon.Runtime.Interop;

namespace Cordon.Runtime.Cgroups;

/// <summary>The host's lxcfs instance for Cordon: a FUSE file system (Debian package <c>lxcfs</c>, made for
/// exactly this by the LXC project) that serves <c>/proc/meminfo</c>, <c>/proc/cpuinfo</c>, <c>/proc/stat</c>,
/// <c>/proc/loadavg</c>, <c>/proc/uptime</c>, <c>/proc/swaps</c> and <c>/proc/diskstats</c> as the reading
/// process's own cgroup limits make them. Each sandbox gets these files bind-mounted read-only over its own, so
/// <c>free</c>, <c>top</c> and Node's <c>os.totalmem()</c> report the sandbox's memory, CPUs, load and uptime
/// instead of the host's. (Not <c>/sys/devices/system/cpu/online</c>, which lxcfs can serve too: every program
/// reads it at start, so the runtime writes it for each sandbox instead.)</summary>
/// <remarks>
/// One instance serves every sandbox on the host (it answers each read from the caller's cgroup), at a fixed
/// mount point shared by every Cordon server. It must outlive the server, as sandboxes do: their bind mounts
/// point into it, and reads there fail (ENOTCONN) once it is gone. So it runs in its own session and its own
/// cgroup (a service manager stopping the server does not take it along), and a server that finds it mounted
/// and answering reuses it. What lxcfs cannot change: <c>sysinfo(2)</c> (busybox's <c>free</c> uses it) still
/// reports the host.
/// <para>The runtime binds each file from <see cref="ViewsDirectory"/>, where the server has bound the lxcfs file once,
/// not from the FUSE mount: looking a path up below a FUSE mount asks the daemon again for each name whose entry has
/// expired, and with ten sandboxes starting at once every runtime waited on lxcfs to answer seven lookups (a fork of
/// 10 took 1.3× as long as with lxcfs off). A bind mount's root is never looked up by name, so nothing asks lxcfs.</para>
/// </remarks>
public sealed class LxcfsHost(string program, string mountPoint)
{
    /// <summary>The files each sandbox sees through lxcfs; each lies at the same path below the mount point.</summary>
    public static readonly IReadOnlyList<string> VirtualizedFiles =
    [
        "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/uptime", "/proc/loadavg", "/proc/swaps", "/proc/diskstats",
    ];

    /// <summary>How the server starts lxcfs: in the foreground of its own session, with the CPU view following
    /// CFS quotas as well as cpusets, per-sandbox load averages, and pidfds (no pid-reuse races).</summary>
    public static readonly IReadOnlyList<string> Arguments = ["-f", "--enable-loadavg", "--enable-cfs", "--enable-pidfd"];

    public string MountPoint => mountPoint;

    /// <summary>Where each virtualized file is bound once, as <c>proc-meminfo</c> and so on; beside the mount point,
    /// shared, as the instance is, by the host's Cordon servers.</summary>
    public string ViewsDirectory => mountPoint.TrimEnd('/') + ".views";

    /// <summary>Bind mounts for a sandbox: (host file under the mount point, path in the sandbox). Empty until
    /// <see cref="EnsureRunningAsync"/> succeeded.</summary>
    public IReadOnlyList<(string Source, string Destination)> Mounts { get; private set; } = [];

    /// <summary>Reuses a live instance at the mount point or starts one; fills <see cref="Mounts"/>.</summary>
    /// <param name="cgroups">Moves a started instance into a cgroup of its own under this host's layout.</param>
    /// <param name="cgroupParent">Cordon's cgroup parent; the instance goes to <c>{parent}/lxcfs</c>.</param>
    /// <returns>Null when lxcfs serves, else why not (with what to do), for the host report.</returns>
    public async Task<string?> EnsureRunningAsync(CgroupHost cgroups, string cgroupParent, CancellationToken cancellationToken)
    {
        if (!File.Exists(program))
        {
            return $"lxcfs is not installed ({program}): sandboxes see the host's memory and CPUs in /proc. apt-get install lxcfs (./cordon does), or set Runtime:Lxcfs=false.";
        }

        // The mount table first: a dead instance (killed with the machine's other processes, say) leaves its
        // mount behind, and every access to the mount point, even the stat inside CreateDirectory, fails ENOTCONN.
        var mounted = IsLxcfsMount();
        if (mounted && Answers())
        {
            Mounts = BindViews();
            return null;
        }

        if (mounted)
        {
            Syscalls.umount2(mountPoint, Syscalls.MNT_DETACH);
        }

        Directory.CreateDirectory(mountPoint);

        // SECURITY: lxcfs runs as root, as packaged, and serves only the files above to sandboxes, each
        // bind-mounted read-only; it answers every read from the cgroup of the process that reads.
        var pidFile = mountPoint.TrimEnd('/') + ".pid";
        var log = mountPoint.TrimEnd('/') + ".log";
        var exit = await HostSpawn.RunAsync("/usr/bin/setsid", ["-f", program, .. Arguments, "-p", pidFile, mountPoint], output: log);
        if (exit != 0)
        {
            return $"lxcfs could not be started (setsid exited {exit}); sandboxes see the host's memory and CPUs in /proc. The server log and {log} say why.";
        }

        var waited = Stopwatch.StartNew();
        while (!File.Exists(Path.Combine(mountPoint, "proc", "meminfo")))
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(10))
            {
                return $"lxcfs did not mount its file system within 10 s; sandboxes see the host's memory and CPUs in /proc. See {log}.";
            }

            await Task.Delay(TimeSpan.FromMilliseconds(10), cancellationToken);
        }

        if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid))
        {
            cgroups.MoveToOwnCgroup(cgroupParent, "lxcfs", pid);
        }

        Mounts = BindViews();
        return null;
    }

    /// <summary>Binds each file lxcfs serves into <see cref="ViewsDirectory"/> (again where a view is of an instance
    /// that is gone, or missing) and lists the views; a file that cannot be bound is listed at its FUSE path.</summary>
    private List<(string Source, string Destination)> BindViews()
    {
        Directory.CreateDirectory(ViewsDirectory, Modes.TraverseOnly); // the runtime binds from here inside the sandbox's user namespace
        var device = Syscalls.lstat(mountPoint, out var root) == 0 ? root.Dev : 0;
        var mounts = new List<(string Source, string Destination)>();
        foreach (var file in VirtualizedFiles)
        {
            var source = Path.Combine(mountPoint, file.TrimStart('/'));
            if (!File.Exists(source))
            {
                continue;
            }

            var view = Path.Combine(ViewsDirectory, file.TrimStart('/').Replace('/', '-'));
            if (!(Syscalls.IsMountPoint(view) && Syscalls.lstat(view, out var bound) == 0 && bound.Dev == device))
            {
                Syscalls.umount2(view, Syscalls.MNT_DETACH); // of an instance that is gone
                if (!File.Exists(view))
                {
                    File.WriteAllBytes(view, []);
                }

                if (Syscalls.mount(source, view, null, Syscalls.MS_BIND, null) != 0)
                {
                    mounts.Add((source, file));
                    continue;
                }
            }

            mounts.Add((view, file));
        }

        return mounts;
    }

    private bool Answers()
    {
        try
        {
            return File.ReadAllText(Path.Combine(mountPoint, "proc", "uptime")).Length > 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private bool IsLxcfsMount()
    {
        var target = Path.GetFullPath(mountPoint).TrimEnd('/');
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root mount-point options ... - fstype source super-options
            var fields = line.Split(' ');
            var separator = Array.IndexOf(fields, "-");
            if (fields.Length > 4 && separator > 0 && separator + 1 < fields.Length
                && fields[4] == target && fields[separator + 1] is "fuse.lxcfs" or "fuse")
            {
                return true;
            }
        }

        return false;
    }
}
