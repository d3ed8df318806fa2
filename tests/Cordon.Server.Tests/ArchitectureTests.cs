using System.Text.RegularExpressions;
using ArchUnitNET.Domain;
using ArchUnitNET.Loader;
using ArchUnitNET.xUnitV3;
using Cordon.Testing;
using Xunit;
using static ArchUnitNET.Fluent.ArchRuleDefinition;

namespace Cordon.Server.Tests;

/// <summary>The layering of docs/architecture.md, checked on the compiled assemblies: interfaces are thin adapters
/// over the one service layer and never reach the runtime or the state store; nothing below depends on what is
/// above it; P/Invoke and unsafe code stay in Interop folders.</summary>
public sealed partial class ArchitectureTests
{
    private static readonly string[] Adapters = ["Cordon.Server.Api", "Cordon.Server.Mcp", "Cordon.Server.Compat"];

    private static readonly Lazy<Architecture> Loaded = new(() =>
    {
        var loader = new ArchLoader().LoadAssemblies(
            typeof(CordonServer).Assembly,
            typeof(Runtime.ISandboxRuntime).Assembly,
            typeof(Protocol.FrameStream).Assembly,
            typeof(Client.CordonClient).Assembly);

        // The agent is an executable built for linux-x64 (NativeAOT); its IL is read from the build output.
        var agent = Directory.EnumerateFiles(Path.Combine(TestPaths.RepositoryRoot, "src", "Cordon.Agent", "bin"), "cordon-agent.dll", SearchOption.AllDirectories)
            .OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault()
            ?? throw new InvalidOperationException("src/Cordon.Agent was not built: build Cordon.slnx first (./cordon test does).");
        return loader.LoadFilteredDirectory(Path.GetDirectoryName(agent)!, "cordon-agent.dll").Build();
    });

    private static Architecture Architecture => Loaded.Value;

    /// <summary>Every namespace the rules speak of has types, so no rule holds only because it checks nothing.</summary>
    [Theory]
    [InlineData("Cordon.Server.Api")]
    [InlineData("Cordon.Server.Mcp")]
    [InlineData("Cordon.Server.Compat")]
    [InlineData("Cordon.Server.State")]
    [InlineData("Cordon.Server.Sandboxes")]
    [InlineData("Cordon.Runtime")]
    [InlineData("Cordon.Agent")]
    [InlineData("Cordon.Client")]
    [InlineData("Cordon.Protocol")]
    public void Rules_SpeakOfNamespacesThatHaveTypes(string name)
        => Assert.Contains(Architecture.Types, t => t.Namespace.FullName == name || t.Namespace.FullName.StartsWith(name + ".", StringComparison.Ordinal));

    [Theory]
    [InlineData("Cordon.Server.Api")]
    [InlineData("Cordon.Server.Mcp")]
    [InlineData("Cordon.Server.Compat")]
    public void Adapter_ReachesNeitherTheRuntimeNorTheStateStore(string adapter)
        => Types().That().ResideInNamespaceOrBelow(adapter)
            .Should().NotDependOnAny(Types().That().ResideInNamespaceOrBelow("Cordon.Runtime").Or().ResideInNamespaceOrBelow("Cordon.Server.State"))
            .Check(Architecture);

    [Theory]
    [InlineData("Cordon.Server.Api")]
    [InlineData("Cordon.Server.Mcp")]
    [InlineData("Cordon.Server.Compat")]
    public void Adapter_DoesNotCallAnotherAdapter(string adapter)
    {
        var others = Adapters.Where(a => a != adapter).ToArray();
        Types().That().ResideInNamespaceOrBelow(adapter)
            .Should().NotDependOnAny(Types().That().ResideInNamespaceOrBelow(others[0]).Or().ResideInNamespaceOrBelow(others[1]))
            .Check(Architecture);
    }

    [Fact]
    public void Runtime_DoesNotDependOnTheServer()
        => Types().That().ResideInNamespaceOrBelow("Cordon.Runtime")
            .Should().NotDependOnAny(Types().That().ResideInNamespaceOrBelow("Cordon.Server"))
            .Check(Architecture);

    [Fact]
    public void Agent_DependsOnNeitherTheRuntimeNorTheServer()
        => Types().That().ResideInNamespaceOrBelow("Cordon.Agent")
            .Should().NotDependOnAny(Types().That().ResideInNamespaceOrBelow("Cordon.Runtime").Or().ResideInNamespaceOrBelow("Cordon.Server"))
            .Check(Architecture);

    [Fact]
    public void Client_DependsOnNeitherTheServerNorTheRuntime()
        => Types().That().ResideInNamespaceOrBelow("Cordon.Client")
            .Should().NotDependOnAny(Types().That().ResideInNamespaceOrBelow("Cordon.Server").Or().ResideInNamespaceOrBelow("Cordon.Runtime"))
            .Check(Architecture);

    [Fact]
    public void Protocol_DependsOnNoOtherCordonAssembly()
        => Types().That().ResideInNamespaceOrBelow("Cordon.Protocol")
            .Should().NotDependOnAny(Types().That().ResideInNamespaceOrBelow("Cordon.Server").Or().ResideInNamespaceOrBelow("Cordon.Runtime")
                .Or().ResideInNamespaceOrBelow("Cordon.Agent").Or().ResideInNamespaceOrBelow("Cordon.Client"))
            .Check(Architecture);

    /// <summary>The compiler does not record <c>unsafe</c> in what it emits, so this reads the sources: unsafe code,
    /// pointers and native imports appear only in files under an <c>Interop/</c> folder.</summary>
    [Fact]
    public void UnsafeCodeAndNativeImports_LiveOnlyInInterop()
    {
        var offenders = Directory.EnumerateFiles(Path.Combine(TestPaths.RepositoryRoot, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .Where(f => !f.Contains("/Interop/", StringComparison.Ordinal))
            .Where(f => UnsafeOrNative().IsMatch(StripComments(File.ReadAllText(f))))
            .Select(f => Path.GetRelativePath(TestPaths.RepositoryRoot, f))
            .ToList();

        Assert.True(offenders.Count == 0, "unsafe code or native imports outside Interop/: " + string.Join(", ", offenders));
    }

    private static string StripComments(string source) => CommentRegex().Replace(source, "");

    [GeneratedRegex(@"\bunsafe\b|\[(System\.Runtime\.InteropServices\.)?(LibraryImport|DllImport)\b|\bfixed\s*\(")]
    private static partial Regex UnsafeOrNative();

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/|""(\\.|[^""\\])*""", RegexOptions.Singleline)]
    private static partial Regex CommentRegex();
}
