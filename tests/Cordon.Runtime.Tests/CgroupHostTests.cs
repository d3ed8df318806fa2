using Cordon.Runtime.Cgroups;
using Xunit;

namespace Cordon.Runtime.Tests;

public sealed class CgroupHostTests
{
    [Fact]
    public void MountFlags_SystemdCgroupMount_KeepsHardeningFlags()
    {
        // What systemd mounts /sys/fs/cgroup with: a remount must pass these again or they are cleared.
        var flags = CgroupHost.MountFlags("rw,nosuid,nodev,noexec,relatime");

        Assert.Equal(2UL | 4UL | 8UL | (1UL << 21), flags);
    }

    [Fact]
    public void MountFlags_ReadOnly_Kept()
        => Assert.Equal(1UL, CgroupHost.MountFlags("ro") & 1UL);

    [Fact]
    public void CgroupsPath_IsUnderTheParent()
        => Assert.Equal("/cordon/abc", CgroupHost.CgroupsPath("/cordon/", "abc"));
}
