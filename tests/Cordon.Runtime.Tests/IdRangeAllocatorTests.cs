using Cordon.Runtime.Oci;
using Cordon.Testing;
using Xunit;

namespace Cordon.Runtime.Tests;

public sealed class IdRangeAllocatorTests
{
    [Fact]
    public void Allocate_TwoSandboxes_GetDisjointRanges()
    {
        var ranges = new IdRangeAllocator(1 << 20, 4);
        var a = ranges.Allocate();
        var b = ranges.Allocate();

        Assert.NotEqual(a, b);
        Assert.True(Math.Abs(ranges.HostIdOf(a) - ranges.HostIdOf(b)) >= IdRangeAllocator.RangeSize);
    }

    [Fact]
    public void Allocate_AllUsed_ThrowsWithAdvice()
    {
        var ranges = new IdRangeAllocator(1 << 20, 2);
        ranges.Allocate();
        ranges.Allocate();

        var ex = Assert.Throws<SandboxRuntimeException>(() => ranges.Allocate());
        Assert.Contains("MaxSandboxes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Release_ThenAllocate_ReusesRange()
    {
        var ranges = new IdRangeAllocator(1 << 20, 2);
        var a = ranges.Allocate();
        ranges.Release(a);

        Assert.Equal(a, ranges.Allocate());
    }

    [Fact]
    public void MarkUsed_FoundAtStart_NotHandedOutAgain()
    {
        var ranges = new IdRangeAllocator(1 << 20, 2);
        ranges.MarkUsed(0);

        Assert.Equal(1, ranges.Allocate());
    }

    /// <summary>Review finding 11: two servers on one host (two data directories) never hand out the same ids.</summary>
    [Fact]
    public void TwoServersOnOneHost_ClaimDisjointRanges_AndReuseOnlyWhatWasReleasedOrAbandoned()
    {
        var claims = TestPaths.NewTempDirectory("id-claims");
        var first = TestPaths.NewTempDirectory("state-a");
        var second = TestPaths.NewTempDirectory("state-b");
        var third = TestPaths.NewTempDirectory("state-c");
        try
        {
            var a = new IdRangeAllocator(1 << 20, 3, claims, first);
            var b = new IdRangeAllocator(1 << 20, 3, claims, second);
            var takenByA = a.Allocate();
            var takenByB = b.Allocate();
            a.Release(takenByA);
            var reusedByB = b.Allocate();

            // The first server, restarted, claims its sandbox's range again; a third server then finds none free,
            // until the second server's state directory is gone and its ranges are abandoned.
            new IdRangeAllocator(1 << 20, 3, claims, first).MarkUsed(2);
            var c = new IdRangeAllocator(1 << 20, 3, claims, third);
            var full = Assert.Throws<SandboxRuntimeException>(() => c.Allocate());
            Directory.Delete(second, recursive: true);
            var takenOver = c.Allocate();

            Assert.NotEqual(takenByA, takenByB);
            Assert.Equal(takenByA, reusedByB);
            Assert.Contains("MaxSandboxes", full.Message, StringComparison.Ordinal);
            Assert.Equal(0, takenOver);
        }
        finally
        {
            foreach (var dir in new[] { claims, first, second, third }.Where(Directory.Exists))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }
}
