namespace Cordon.Runtime.Tests;

/// <summary>The contract, driven through runc (selectable with Runtime:Runtime=runc).</summary>
public sealed class RuncRuntimeTests : SandboxRuntimeContract
{
    protected override string RuntimeName => "runc";
}
