using Cordon.Runtime.Cgroups;
using Xunit;

namespace Cordon.Runtime.Tests;

public sealed class CpuPlacementTests
{
    [Fact]
    public void Place_SandboxesOfOneCpu_SpreadOverTheLeastLoaded()
    {
        var placement = new CpuPlacement([0, 1, 2, 3]);

        Assert.Equal("0", placement.Place("a", 1));
        Assert.Equal("1", placement.Place("b", 0.5));
        Assert.Equal("2", placement.Place("c", 1));
        Assert.Equal("3", placement.Place("d", 1));
        Assert.Equal("1", placement.Place("e", 0.25)); // CPU 1 carries half a CPU, the others one
    }

    [Fact]
    public void Place_FractionalCpus_GetsTheCeiling()
    {
        var placement = new CpuPlacement([0, 1, 2, 3]);

        Assert.Equal("0-1", placement.Place("a", 1.5));
        Assert.Equal(0.75, placement.Load()[0]);
        Assert.Equal("2-3", placement.Place("b", 2));
    }

    [Fact]
    public void Place_AsManyCpusAsTheHost_IsNotPinned()
    {
        var placement = new CpuPlacement([0, 1]);

        Assert.Null(placement.Place("a", 2));
        Assert.Null(placement.Place("b", 8));
        Assert.All(placement.Load().Values, load => Assert.Equal(0, load));
    }

    [Fact]
    public void Release_GivesTheCpuBack()
    {
        var placement = new CpuPlacement([0, 1]);
        placement.Place("a", 1);
        placement.Place("b", 1);

        placement.Release("a");
        placement.Release("a"); // unknown ids are fine

        Assert.Equal("0", placement.Place("c", 1));
    }

    [Fact]
    public void Restore_SandboxFoundAtStart_CountsForNewOnes()
    {
        var placement = new CpuPlacement([4, 5, 6]);

        placement.Restore("old", "4-5", 2);
        placement.Restore("gone-cpu", "9", 1); // a CPU this host no longer offers counts for nothing

        Assert.Equal("6", placement.Place("new", 1));
        Assert.Equal(1.0, placement.Load()[4]);
    }

    [Fact]
    public void Place_SameIdAgain_ReplacesItsPlacement()
    {
        var placement = new CpuPlacement([0, 1]);
        placement.Place("a", 1);

        placement.Place("a", 1);

        Assert.Equal(1.0, placement.Load().Values.Sum());
    }

    [Theory]
    [InlineData("0", new[] { 0 })]
    [InlineData("0-3", new[] { 0, 1, 2, 3 })]
    [InlineData(" 0-1,4,6-7\n", new[] { 0, 1, 4, 6, 7 })]
    public void ParseAndFormat_KernelCpuLists_RoundTrip(string list, int[] cpus)
    {
        Assert.Equal(cpus, CpuPlacement.Parse(list));
        Assert.Equal(list.Trim(), CpuPlacement.Format(cpus));
    }
}
