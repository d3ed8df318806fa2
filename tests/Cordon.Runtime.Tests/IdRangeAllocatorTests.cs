using Cordon.Runtime.Oci;
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
}
