using Cordon.Testing;

namespace Cordon.Runtime.Tests;

/// <summary>The contract, driven through the static build of the installed crun that ./cordon serve runs
/// (tools/static-crun).</summary>
public sealed class StaticCrunRuntimeTests : SandboxRuntimeContract
{
    protected override string RuntimeName => "crun";

    protected override string? RuntimePath => File.Exists(TestPaths.StaticCrunPath)
        ? TestPaths.StaticCrunPath
        : throw new InvalidOperationException($"The static crun {TestPaths.StaticCrunPath} was not built: run tools/static-crun (./cordon test does); its output says why it failed.");
}
