namespace Cordon.Runtime;

/// <summary>Resource use of a sandbox, read from its cgroup.</summary>
public sealed record SandboxUsage(long MemoryBytes, long MemoryLimitBytes, int Processes, double CpuSeconds);
