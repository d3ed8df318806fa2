namespace Cordon.Runtime.Tests;

/// <summary>The contract, driven through crun (the default runtime).</summary>
public sealed class CrunRuntimeTests : SandboxRuntimeContract
{
    protected override string RuntimeName => "crun";
}
