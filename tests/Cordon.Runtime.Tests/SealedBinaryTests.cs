using Cordon.Runtime.Interop;
using Xunit;

namespace Cordon.Runtime.Tests;

/// <summary>The runtime's sealed copy: the same program, runnable, and not writable by anyone (what keeps a
/// sandbox from overwriting the runtime through /proc/self/exe).</summary>
public sealed class SealedBinaryTests
{
    [Fact]
    public async Task Copy_RunsAsTheProgram_AndRefusesWrites()
    {
        using var sealedCrun = SealedBinary.Create("/usr/bin/crun");

        var version = await ExternalProgram.RunAsync(sealedCrun.Path, ["--version"], TestContext.Current.CancellationToken);
        var write = Record.Exception(() =>
        {
            using var handle = File.OpenHandle(sealedCrun.Path, FileMode.Open, FileAccess.Write);
            RandomAccess.Write(handle, "\x7fELF"u8, 0);
        });
        var contents = await File.ReadAllBytesAsync(sealedCrun.Path, TestContext.Current.CancellationToken);

        Assert.StartsWith("crun version", version.Stdout, StringComparison.Ordinal);
        Assert.IsType<UnauthorizedAccessException>(write); // EPERM: the memfd is sealed against writes
        Assert.Equal(await File.ReadAllBytesAsync("/usr/bin/crun", TestContext.Current.CancellationToken), contents);
    }

    [Fact]
    public void Copy_OfAMissingProgram_Throws()
        => Assert.ThrowsAny<IOException>(() => SealedBinary.Create("/nonexistent/crun"));
}
