namespace Cordon.Runtime;

/// <summary>Resource use of a sandbox, read from its cgroup (and its network interface's counters).</summary>
public sealed record SandboxUsage(long MemoryBytes, long MemoryLimitBytes, int Processes, double CpuSeconds)
{
    /// <summary>Bytes the sandbox received over its network (0 without one).</summary>
    public long NetworkReceivedBytes { get; init; }

    /// <summary>Bytes the sandbox sent over its network (0 without one).</summary>
    public long NetworkSentBytes { get; init; }
}
