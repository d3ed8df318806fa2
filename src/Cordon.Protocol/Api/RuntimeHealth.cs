namespace Cordon.Protocol.Api;

/// <summary>What one runtime found on the host.</summary>
public sealed record RuntimeHealth
{
    public required string Name { get; init; }

    public bool Available { get; init; }

    public string? Version { get; init; }

    public string? Cgroups { get; init; }

    public bool Seccomp { get; init; }

    public bool IdmappedMounts { get; init; }

    public IReadOnlyList<string> Problems { get; init; } = [];

    public IReadOnlyList<string> Fixed { get; init; } = [];
}
