using System.Text;
using Cordon.Server.Sandboxes;
using Xunit;

namespace Cordon.Server.Tests;

public sealed class CappedOutputTests
{
    [Fact]
    public void Append_UnderCap_KeepsEverything()
    {
        var output = new CappedOutput(100);
        output.Append("hello "u8);
        output.Append("world"u8);

        Assert.False(output.Truncated);
        Assert.Equal("hello world", output.ToText());
    }

    [Fact]
    public void Append_OverCap_KeepsHeadAndTailAndCountsOmitted()
    {
        var output = new CappedOutput(10);
        output.Append(Encoding.ASCII.GetBytes("ABCDE"));
        for (var i = 0; i < 100; i++)
        {
            output.Append("-"u8);
        }

        output.Append(Encoding.ASCII.GetBytes("VWXYZ"));

        Assert.True(output.Truncated);
        Assert.Equal(110, output.TotalBytes);
        Assert.StartsWith("ABCDE", output.ToText(), StringComparison.Ordinal);
        Assert.EndsWith("VWXYZ", output.ToText(), StringComparison.Ordinal);
        Assert.Contains("100 bytes omitted", output.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Append_HugeChunk_TailHoldsItsEnd()
    {
        var output = new CappedOutput(8);
        output.Append(Encoding.ASCII.GetBytes("0123456789abcdef"));

        Assert.StartsWith("0123", output.ToText(), StringComparison.Ordinal);
        Assert.EndsWith("cdef", output.ToText(), StringComparison.Ordinal);
    }
}
