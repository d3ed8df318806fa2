using System.Security.Cryptography;
using Cordon.Runtime.Oci;
using Cordon.Testing;
using Xunit;

namespace Cordon.Runtime.Tests;

/// <summary>Which runtime program runs: a static build only while it is the twin of the installed program.</summary>
public sealed class RuntimeProgramTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDirectory("program");
    private readonly string _installed;
    private readonly string _bundled;

    public RuntimeProgramTests()
    {
        _installed = Path.Combine(_dir, "installed-crun");
        _bundled = Path.Combine(_dir, "crun");
        File.WriteAllText(_installed, "installed crun, version 1");
        File.WriteAllText(_bundled, "static crun");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void RecordBuiltFrom(string contents)
        => File.WriteAllText(_bundled + RuntimeProgram.SourceSuffix,
            $"package=crun 1\nsystem-sha256={Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(contents)))}\n");

    [Fact]
    public void Select_StaticTwinOfTheInstalledProgram_RunsTheStaticBuild()
    {
        RecordBuiltFrom("installed crun, version 1");

        var program = RuntimeProgram.Select(_installed, _bundled);

        Assert.Equal(new RuntimeProgram(_bundled, true, null), program);
    }

    [Fact]
    public void Select_AfterTheInstalledProgramChanged_RunsTheInstalledOneAndSaysWhy()
    {
        RecordBuiltFrom("installed crun, version 1");
        File.WriteAllText(_installed, "installed crun, version 1 with a security fix");

        var program = RuntimeProgram.Select(_installed, _bundled);

        Assert.Equal(_installed, program.Path);
        Assert.False(program.IsStaticBuild);
        Assert.Contains("./cordon rebuilds it", program.Note, StringComparison.Ordinal);
    }

    [Fact]
    public void Select_StaticBuildWithoutItsRecord_RunsTheInstalledOne()
    {
        var program = RuntimeProgram.Select(_installed, _bundled);

        Assert.Equal(_installed, program.Path);
        Assert.NotNull(program.Note);
    }

    [Fact]
    public void Select_NoStaticBuild_RunsTheInstalledOneWithoutANote()
        => Assert.Equal(new RuntimeProgram(_installed, false, null), RuntimeProgram.Select(_installed, Path.Combine(_dir, "absent")));

    [Fact]
    public void Select_AConfiguredPath_AlwaysWins()
    {
        RecordBuiltFrom("installed crun, version 1");

        var program = RuntimeProgram.Select(new OciRuntimeOptions { RuntimePath = "/opt/crun", BundledRuntimePath = _bundled });

        Assert.Equal(new RuntimeProgram("/opt/crun", false, null), program);
    }
}
