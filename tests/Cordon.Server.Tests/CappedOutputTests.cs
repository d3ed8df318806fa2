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

    [Fact]
    public void Append_ManyChunks_MatchesFirstAndLastHalfOfEverything()
    {
        var random = new Random(7);
        foreach (var cap in new[] { 2, 16, 100, 20_000 })
        {
            var output = new CappedOutput(cap);
            var all = new StringBuilder();
            for (var i = 0; i < 300; i++)
            {
                var chunk = new string((char)('a' + (i % 26)), random.Next(0, 3 * cap / 2 + 2));
                all.Append(chunk);
                output.Append(Encoding.ASCII.GetBytes(chunk));
            }

            var text = all.ToString();
            var half = cap / 2;
            Assert.Equal(text.Length, output.TotalBytes);
            Assert.Equal(text.Length > cap, output.Truncated);
            var expected = text.Length <= cap
                ? text
                : $"{text[..half]}\n[... {text.Length - 2 * half} bytes omitted; stream the output to get all of it ...]\n{text[^half..]}";
            Assert.Equal(expected, output.ToText());
        }
    }

    [Fact]
    public void Append_SmallPiecesUnderALargeCap_KeepsEverything()
    {
        var output = new CappedOutput(4 << 20);
        var all = new StringBuilder();
        for (var i = 0; i < 2000; i++)
        {
            var line = $"line {i}\n";
            all.Append(line);
            output.Append(Encoding.ASCII.GetBytes(line));
        }

        Assert.False(output.Truncated);
        Assert.Equal(all.ToString(), output.ToText());
    }
}
