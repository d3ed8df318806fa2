namespace Cordon.Server.Sandboxes;

/// <summary>A sandbox as the service describes it to every interface: an immutable view, taken when the call
/// answered. Interfaces shape it into their own wire types; they never see the service's own records.</summary>
public sealed record Sandbox
{
    /// <summary>20 lowercase letters and digits.</summary>
    public required string Id { get; init; }

    /// <summary>Id of the API key that created it.</summary>
    public required string Owner { get; init; }

    public required string Image { get; init; }

    public required string Runtime { get; init; }

    public required SandboxState State { get; init; }

    public double Cpu { get; init; }

    public long MemoryMiB { get; init; }

    public long DiskMiB { get; init; }

    public int MaxProcesses { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Its wall-clock life, restarted by resume and by a new timeout.</summary>
    public int TimeoutSeconds { get; init; }

    /// <summary>When it will be destroyed unless its timeout is extended; null while paused or ended.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    public DateTimeOffset? EndedAt { get; init; }

    public EndReason? EndReason { get; init; }

    /// <summary>The user commands and file operations run as when a request names none.</summary>
    public required string DefaultUser { get; init; }

    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>Its web ports are reachable without a credential through E2B's sandbox addressing.</summary>
    public bool PublicPorts { get; init; }

    /// <summary>What its traffic may reach.</summary>
    public Network.EgressPolicy Network { get; init; } = Cordon.Server.Network.EgressPolicy.None;

    public SandboxTimers Timers { get; init; } = new();

    /// <summary>The snapshots its file system started from, oldest first.</summary>
    public IReadOnlyList<string> Snapshots { get; init; } = [];

    /// <summary>The volumes mounted into it.</summary>
    public IReadOnlyList<SandboxVolume> Volumes { get; init; } = [];

    /// <summary>When it was stopped; null unless stopped.</summary>
    public DateTimeOffset? StoppedAt { get; init; }

    /// <summary>Processes can run in it now.</summary>
    public bool IsRunning => State == SandboxState.Running;
}
