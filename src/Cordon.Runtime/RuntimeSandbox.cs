namespace Cordon.Runtime;

/// <summary>A sandbox as a runtime finds it on the host.</summary>
public sealed record RuntimeSandbox(string Id, RuntimeSandboxStatus Status);
