using System.Text;
using Cordon.Server.Sandboxes;
using Xunit;

namespace Cordon.Server.Tests;

public sealed class OutputCapTests
{
    private const string How = "stream it";

    [Fact]
    public void Append_UnderCap_KeepsEverything()
    {
        var output = new OutputCap(100);
        output.Append("hello ");
        output.Append("world");

        Assert.False(output.Truncated);
        Assert.Equal("hello world", output.ToText(How));
        Assert.Equal(11, output.Length);
    }

    [Fact]
    public void Append_OverCap_KeepsHeadAndTailWithOneMarker()
    {
        var output = new OutputCap(10);
        output.Append("ABCDE");
        for (var i = 0; i < 100; i++)
        {
            output.Append("-");
        }

        output.Append("VWXYZ");

        Assert.True(output.Truncated);
        Assert.Equal(110, output.Length);
        Assert.Equal(100, output.Omitted);
        Assert.Equal("ABCDE" + OutputCap.Marker(100, How) + "VWXYZ", output.ToText(How));
        Assert.Contains("100 characters left out; stream it", output.ToText(How), StringComparison.Ordinal);
    }

    [Fact]
    public void Append_HugeChunk_TailHoldsItsEnd()
    {
        var output = new OutputCap(8);
        output.Append("0123456789abcdef");

        Assert.Equal("0123" + OutputCap.Marker(8, How) + "cdef", output.ToText(How));
    }

    /// <summary>Random chunk sizes (smaller and larger than the ring, across every growth step) against a model: the
    /// first and last halves of everything written, and every cursor read.</summary>
    [Fact]
    public void AppendAndRead_RandomChunks_MatchTheModel()
    {
        var random = new Random(7);
        foreach (var cap in new[] { 2, 3, 16, 101, 5000 })
        {
            var output = new OutputCap(cap);
            var all = new StringBuilder();
            for (var i = 0; i < 400; i++)
            {
                var chunk = new string((char)('a' + (i % 26)), random.Next(0, 3 * cap / 2 + 2));
                all.Append(chunk);
                output.Append(chunk);
                Check(output, all.ToString(), cap, random);
            }
        }
    }

    private static void Check(OutputCap output, string all, int cap, Random random)
    {
        var head = cap / 2;
        var tail = cap - head;
        var omitted = Math.Max(0, all.Length - cap);
        var expected = omitted == 0 ? all : all[..head] + OutputCap.Marker(omitted, How) + all[^tail..];
        Assert.Equal(expected, output.ToText(How));
        Assert.Equal(all.Length, output.Length);

        // A read from any cursor: what is kept from there, the dropped middle skipped.
        var cursor = random.Next(0, all.Length + 2);
        var max = random.Next(1, cap + 3);
        var (text, start, next) = output.Read(cursor, max);
        var keptFrom = cursor < head || omitted == 0 ? Math.Min(cursor, all.Length) : Math.Max(cursor, all.Length - tail);
        Assert.Equal(Math.Min(keptFrom, all.Length), start);
        var kept = Enumerable.Range((int)start, all.Length - (int)start).Where(i => omitted == 0 || i < head || i >= all.Length - tail).Take(max).ToList();
        Assert.Equal(string.Concat(kept.Select(i => all[i])), text);
        Assert.True((kept.Count == 0 ? start : kept[^1] + 1) == next, $"cap {cap}, length {all.Length}, cursor {cursor}, max {max}: next {next}, start {start}, text '{text}'");
    }

    [Fact]
    public void Cap_FinishedText_SameMarker()
    {
        var (text, truncated) = OutputCap.Cap(new string('x', 50) + new string('y', 50), 10, How);

        Assert.True(truncated);
        Assert.Equal("xxxxx" + OutputCap.Marker(90, How) + "yyyyy", text);
        Assert.Equal(("short", false), OutputCap.Cap("short", 10, How));
    }
}
