namespace Cordon.Runtime;

/// <summary>What a runtime found on the host: whether it can create sandboxes, and if not, why.</summary>
public sealed record RuntimeCapabilities
{
    public required string Name { get; init; }

    public required bool Available { get; init; }

    /// <summary>The runtime program's version line.</summary>
    public string? Version { get; init; }

    /// <summary><c>v1</c>, <c>v2</c> or <c>hybrid</c>.</summary>
    public string? Cgroups { get; init; }

    public bool Seccomp { get; init; }

    public bool IdmappedMounts { get; init; }

    /// <summary>Sandboxes see their own memory, CPUs, load and uptime in /proc (lxcfs serves).</summary>
    public bool Lxcfs { get; init; }

    /// <summary>Sandboxes get a network of their own, by policy (else loopback only; <see cref="Warnings"/> says why).</summary>
    public bool Network { get; init; }

    /// <summary>Snapshots and forks work: writable layers clone without copying (else <see cref="Warnings"/> says why).</summary>
    public bool Snapshots { get; init; }

    /// <summary>Host problems found, each with what to do about it. Empty when all is well.</summary>
    public IReadOnlyList<string> Problems { get; init; } = [];

    /// <summary>What works less well than it could on this host (sandboxes are still created), with what to do.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Host problems Cordon fixed by itself at start.</summary>
    public IReadOnlyList<string> Fixed { get; init; } = [];
}
