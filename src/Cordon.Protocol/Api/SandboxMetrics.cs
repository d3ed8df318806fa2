namespace Cordon.Protocol.Api;

/// <summary>Current resource use of a sandbox (<c>GET /v1/sandboxes/{id}/metrics</c>).</summary>
public sealed record SandboxMetrics(long MemoryBytes, long MemoryLimitBytes, int Processes, double CpuSeconds);
