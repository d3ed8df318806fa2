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

    /// <summary>Sandboxes see their own memory, CPUs, load and uptime in /proc (served by lxcfs).</summary>
    public bool Lxcfs { get; init; }

    /// <summary>Sandboxes get a network of their own, by policy; when false they have loopback only and
    /// <see cref="Warnings"/> says why.</summary>
    public bool Network { get; init; }

    /// <summary>Snapshots and forks work on this host; when false <see cref="Warnings"/> says why.</summary>
    public bool Snapshots { get; init; }

    /// <summary>What works less well than it could on this host; sandboxes are still created.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    public IReadOnlyList<string> Problems { get; init; } = [];

    public IReadOnlyList<string> Fixed { get; init; } = [];
}
