using Cordon.Runtime.Cgroups;
using Xunit;

namespace Cordon.Runtime.Tests;

public sealed class LxcfsHostTests
{
    /// <summary>What a rebooted-without-unmount or killed host leaves: lxcfs gone, its FUSE mount still in the
    /// table, every access to the mount point failing ENOTCONN. The next server must replace it, not fail.</summary>
    [Fact]
    public async Task EnsureRunning_AfterTheInstanceDied_ReplacesItsDeadMount()
    {
        var mountPoint = Path.Combine(Path.GetTempPath(), "cordon-lxcfs-test-" + Guid.NewGuid().ToString("N")[..12]);
        var lxcfs = new LxcfsHost("/usr/bin/lxcfs", mountPoint);
        var cgroups = CgroupHost.Detect();
        try
        {
            Assert.Null(await lxcfs.EnsureRunningAsync(cgroups, "/cordon-test-lxcfs", CancellationToken.None));
            var pid = int.Parse(File.ReadAllText(mountPoint + ".pid").Trim());
            using (var process = System.Diagnostics.Process.GetProcessById(pid))
            {
                process.Kill();
                await process.WaitForExitAsync();
            }

            Assert.ThrowsAny<IOException>(() => File.ReadAllText(Path.Combine(mountPoint, "proc", "uptime")));

            var again = new LxcfsHost("/usr/bin/lxcfs", mountPoint);
            Assert.Null(await again.EnsureRunningAsync(cgroups, "/cordon-test-lxcfs", CancellationToken.None));
            Assert.Contains(again.Mounts, m => m.Destination == "/proc/meminfo");
            Assert.NotEmpty(File.ReadAllText(Path.Combine(mountPoint, "proc", "uptime")));
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

            Interop.Syscalls.umount2(mountPoint, Interop.Syscalls.MNT_DETACH);
            Directory.Delete(mountPoint);
            File.Delete(mountPoint + ".pid");
            File.Delete(mountPoint + ".log");
        }
    }
}
