using Cordon.Runtime.Oci;
using Xunit;

namespace Cordon.Runtime.Tests;

public sealed class SeccompCompilerTests
{
    [Fact]
    public void CompileBpf_Policy_ProducesFilterProgram()
    {
        var bpf = SeccompCompiler.CompileBpf();

        // struct sock_filter is 8 bytes; an allow-list of ~300 calls is hundreds of instructions.
        Assert.Equal(0, bpf.Length % 8);
        Assert.True(bpf.Length / 8 > 200, $"only {bpf.Length / 8} instructions");
    }

    [Theory]
    [InlineData("mount")]
    [InlineData("umount2")]
    [InlineData("unshare")]
    [InlineData("setns")]
    [InlineData("ptrace")]
    [InlineData("bpf")]
    [InlineData("keyctl")]
    [InlineData("kexec_load")]
    [InlineData("init_module")]
    [InlineData("open_by_handle_at")]
    [InlineData("userfaultfd")]
    [InlineData("perf_event_open")]
    [InlineData("pivot_root")]
    [InlineData("fsopen")]
    [InlineData("move_mount")]
    [InlineData("io_uring_setup")]
    public void Allowed_IsolationBreakingCall_NotListed(string syscall)
        => Assert.DoesNotContain(syscall, SeccompPolicy.Allowed);

    [Fact]
    public void ToOciJson_Clone_AllowedOnlyWithoutNamespaceFlags()
    {
        var json = SeccompCompiler.ToOciJson().ToJsonString();

        Assert.Contains("\"SCMP_ACT_ERRNO\"", json, StringComparison.Ordinal);
        Assert.Contains("\"SCMP_CMP_MASKED_EQ\"", json, StringComparison.Ordinal);
        Assert.Contains(SeccompPolicy.ForbiddenCloneFlags.ToString(), json, StringComparison.Ordinal);
        Assert.Contains("\"errnoRet\":38", json, StringComparison.Ordinal);
    }
}
