using Cordon.Runtime.Cgroups;
using Xunit;

namespace Cordon.Runtime.Tests;

public sealed class LxcfsHostTests
{
    /// <summary>What a rebooted-without-unmount or killed host leaves: lxcfs gone, its FUSE mount still in the
    /// table, every access to the mount point (and to the views bound from it) failing ENOTCONN. The next server must
    /// replace it and bind its views again, not fail.</summary>
    [Fact]
    public async Task EnsureRunning_AfterTheInstanceDied_ReplacesItsDeadMount()
    {
        var mountPoint = Path.Combine(Path.GetTempPath(), "cordon-lxcfs-test-" + Guid.NewGuid().ToString("N")[..12]);
        var lxcfs = new LxcfsHost("/usr/bin/lxcfs", mountPoint);
        var cgroups = CgroupHost.Detect();
        try
        {
            Assert.Null(await lxcfs.EnsureRunningAsync(cgroups, "/cordon-test-lxcfs", CancellationToken.None));
            AssertViewsServe(lxcfs);
            var pid = int.Parse(File.ReadAllText(mountPoint + ".pid").Trim());
            using (var process = System.Diagnostics.Process.GetProcessById(pid))
            {
                process.Kill();
                await process.WaitForExitAsync();
            }

            Assert.ThrowsAny<IOException>(() => File.ReadAllText(Path.Combine(mountPoint, "proc", "uptime")));
            Assert.ThrowsAny<IOException>(() => File.ReadAllText(lxcfs.Mounts.First(m => m.Destination == "/proc/uptime").Source));

            var again = new LxcfsHost("/usr/bin/lxcfs", mountPoint);
            Assert.Null(await again.EnsureRunningAsync(cgroups, "/cordon-test-lxcfs", CancellationToken.None));
            Assert.Contains(again.Mounts, m => m.Destination == "/proc/meminfo");
            Assert.NotEmpty(File.ReadAllText(Path.Combine(mountPoint, "proc", "uptime")));
            AssertViewsServe(again);
        }
        finally
        {
            if (File.Exists(mountPoint + ".pid") && int.TryParse(File.ReadAllText(mountPoint + ".pid").Trim(), out var pid))
            {
                try
                {
                    using var process = System.Diagnostics.Process.GetProcessById(pid);
                    process.Kill();
                    await process.WaitForExitAsync();
                }
                catch (ArgumentException)
                {
                    // Already gone.
                }
            }

            if (Directory.Exists(lxcfs.ViewsDirectory))
            {
                foreach (var view in Directory.EnumerateFiles(lxcfs.ViewsDirectory))
                {
                    Interop.Syscalls.umount2(view, Interop.Syscalls.MNT_DETACH);
                }

                Directory.Delete(lxcfs.ViewsDirectory, recursive: true);
            }

            Interop.Syscalls.umount2(mountPoint, Interop.Syscalls.MNT_DETACH);
            Directory.Delete(mountPoint);
            File.Delete(mountPoint + ".pid");
            File.Delete(mountPoint + ".log");
        }
    }

    /// <summary>Each file a sandbox gets is a bind of lxcfs's, in the views directory (so starting a sandbox asks
    /// lxcfs nothing), and reads what lxcfs serves.</summary>
    private static void AssertViewsServe(LxcfsHost lxcfs)
    {
        Assert.Equal(LxcfsHost.VirtualizedFiles.Count, lxcfs.Mounts.Count);
        foreach (var (source, destination) in lxcfs.Mounts)
        {
            Assert.Equal(lxcfs.ViewsDirectory, Path.GetDirectoryName(source));
            Assert.True(Interop.Syscalls.IsMountPoint(source), $"{source} is not a bind mount");
            Assert.Equal(Device(lxcfs.MountPoint), Device(source));
            Assert.NotEmpty(File.ReadAllText(source));
        }
    }

    private static ulong Device(string path) => Interop.Syscalls.lstat(path, out var stat) == 0 ? stat.Dev : throw new IOException($"lstat {path} failed");
}
