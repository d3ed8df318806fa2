namespace Cordon.Protocol.Api;

/// <summary>Answer of <c>GET /health</c>.</summary>
public sealed record HealthReport
{
    /// <summary><c>ok</c>, or <c>degraded</c> when no runtime can create sandboxes.</summary>
    public required string Status { get; init; }

    public required string Version { get; init; }

    public required IReadOnlyList<RuntimeHealth> Runtimes { get; init; }

    /// <summary>The default image's state: <c>ready</c>, <c>building</c>, <c>missing</c> or <c>failed</c>.</summary>
    public string? DefaultImage { get; init; }

    public int Sandboxes { get; init; }
}
