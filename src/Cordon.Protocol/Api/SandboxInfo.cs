namespace Cordon.Protocol.Api;

/// <summary>A sandbox as the REST API describes it.</summary>
public sealed record SandboxInfo
{
    /// <summary>20 lowercase letters and digits.</summary>
    public required string Id { get; init; }

    /// <summary><c>creating</c>, <c>running</c>, <c>paused</c> or <c>ended</c>.</summary>
    public required string State { get; init; }

    /// <summary>The image name the sandbox was created from.</summary>
    public required string Image { get; init; }

    public double Cpu { get; init; }

    public long MemoryMiB { get; init; }

    public long DiskMiB { get; init; }

    public int MaxProcesses { get; init; }

    /// <summary>The isolation runtime (<c>crun</c>, <c>runc</c> …).</summary>
    public required string Runtime { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When the sandbox will be destroyed unless its timeout is extended; null while paused.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    public DateTimeOffset? EndedAt { get; init; }

    /// <summary>Why the sandbox ended: <c>deleted</c>, <c>expired</c>, <c>lost</c>, <c>failed</c> (its agent never
    /// started) or <c>exited</c> (its agent died while it ran).</summary>
    public string? EndReason { get; init; }

    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>Its web ports are reachable without a credential at <c>{port}-{id}.{domain}</c>.</summary>
    public bool PublicPorts { get; init; }

    /// <summary>What its traffic may reach.</summary>
    public NetworkPolicy Network { get; init; } = new();

    /// <summary>The secrets it may use, by the environment variable holding each one's placeholder.</summary>
    public IReadOnlyDictionary<string, string> Secrets { get; init; } = new Dictionary<string, string>();

    /// <summary>Its timers (<c>timeoutSeconds</c> is the timeout it restarts with).</summary>
    public SandboxTimersInfo Timers { get; init; } = new();

    /// <summary>The volumes mounted into it (by id).</summary>
    public IReadOnlyList<VolumeMountInfo> VolumeMounts { get; init; } = [];

    /// <summary>When it was stopped; absent unless stopped.</summary>
    public DateTimeOffset? StoppedAt { get; init; }

    /// <summary>The snapshot it started from; absent for one from an image.</summary>
    public string? Snapshot { get; init; }
}
