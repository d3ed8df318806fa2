namespace Cordon.Protocol.Api;

/// <summary>Current resource use of a sandbox (<c>GET /v1/sandboxes/{id}/metrics</c>).</summary>
public sealed record SandboxMetrics(long MemoryBytes, long MemoryLimitBytes, int Processes, double CpuSeconds)
{
    /// <summary>Bytes the sandbox received over its network.</summary>
    public long NetworkReceivedBytes { get; init; }

    /// <summary>Bytes the sandbox sent over its network.</summary>
    public long NetworkSentBytes { get; init; }

    /// <summary>Connections its network policy refused in the server's proxy and resolver since the server started
    /// (each also in its events, at most one a second).</summary>
    public long NetworkRefused { get; init; }
}
