namespace Cordon.Protocol.Api;

/// <summary>A sandbox's timers, each separate. On create, absent fields take the server's defaults; in
/// <c>PATCH /v1/sandboxes/{id}</c>, absent fields keep theirs and 0 turns the idle timer or the retention off.</summary>
public sealed record SandboxTimersInfo
{
    /// <summary>Its wall-clock life in seconds (PATCH only: restarts it from now).</summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>What happens when the timeout passes: <c>destroy</c> (default), <c>pause</c> or <c>stop</c>.</summary>
    public string? OnTimeout { get; init; }

    /// <summary>Seconds with no API call, no running command, no open stream and no proxied connection after which
    /// <see cref="OnIdle"/> happens; absent or 0 for none.</summary>
    public int? IdleTimeoutSeconds { get; init; }

    /// <summary><c>pause</c> (default), <c>stop</c> or <c>destroy</c>.</summary>
    public string? OnIdle { get; init; }

    /// <summary>A request to the sandbox while it is paused or stopped (a command, a file, a connection to a port)
    /// resumes or starts it first, transparently.</summary>
    public bool? AutoResume { get; init; }

    /// <summary>Seconds a stopped sandbox is kept before it is destroyed; 0 keeps it until deleted.</summary>
    public int? StoppedRetentionSeconds { get; init; }
}

/// <summary>A snapshot: a sandbox's file system saved, owned by the key that took it; <c>POST /v1/sandboxes</c> with
/// <c>snapshot</c> starts new sandboxes from it.</summary>
public sealed record SnapshotInfo
{
    /// <summary><c>snap_</c> and 20 lowercase letters and digits.</summary>
    public required string Id { get; init; }

    public required string Name { get; init; }

    /// <summary>The sandbox it was taken of.</summary>
    public required string SandboxId { get; init; }

    /// <summary>The image under it.</summary>
    public required string Image { get; init; }

    /// <summary>Disk size of the sandbox it was taken of (the default of sandboxes from it).</summary>
    public long DiskMiB { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Sandboxes and snapshots that start from it now (it cannot be deleted while any do).</summary>
    public int UsedBy { get; init; }
}

/// <summary>Body of <c>POST /v1/sandboxes/{id}/snapshots</c>.</summary>
public sealed record CreateSnapshotRequest
{
    /// <summary>Unique among the key's snapshots; one is made up from the sandbox id and the time when absent.</summary>
    public string? Name { get; init; }
}

/// <summary>Body of <c>POST /v1/sandboxes/{id}/fork</c>.</summary>
public sealed record ForkRequest
{
    /// <summary>How many sandboxes (1–20; default 1).</summary>
    public int? Count { get; init; }

    /// <summary>Their timeout; the original's when absent.</summary>
    public int? TimeoutSeconds { get; init; }
}

/// <summary>One fork: the new sandbox, or why it could not be made.</summary>
public sealed record ForkResult
{
    public SandboxInfo? Sandbox { get; init; }

    public string? Error { get; init; }

    public string? Code { get; init; }
}

/// <summary>A volume: named storage with a size limit, owned by a key, mounted into sandboxes at create
/// (<see cref="CreateSandboxRequest.VolumeMounts"/>) and outliving every one of them.</summary>
public sealed record VolumeInfo
{
    /// <summary><c>vol_</c> and 20 lowercase letters and digits.</summary>
    public required string Id { get; init; }

    public required string Name { get; init; }

    public long SizeMiB { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Live sandboxes (stopped ones too) that mount it; it cannot be deleted while any do.</summary>
    public int UsedBy { get; init; }
}

/// <summary>Body of <c>POST /v1/volumes</c>.</summary>
public sealed record CreateVolumeRequest
{
    /// <summary>1–64 letters, digits, '-', '_' or '.'; unique per key.</summary>
    public string? Name { get; init; }

    /// <summary>Its size in MiB (the server's default, 1024, when absent).</summary>
    public long? SizeMiB { get; init; }
}

/// <summary>A volume mounted into a new sandbox.</summary>
public sealed record VolumeMountInfo
{
    /// <summary>The volume's name or id.</summary>
    public required string Name { get; init; }

    /// <summary>Absolute path in the sandbox.</summary>
    public required string Path { get; init; }

    public bool? ReadOnly { get; init; }
}

/// <summary>A file, directory or symlink in a volume. Owners are ids as sandboxes see them (0 is root).</summary>
public sealed record VolumeFileInfo
{
    public required string Name { get; init; }

    public required string Path { get; init; }

    /// <summary><c>file</c>, <c>directory</c>, <c>symlink</c> or <c>unknown</c>.</summary>
    public required string Type { get; init; }

    public long Size { get; init; }

    /// <summary>Permission bits, e.g. 420 (0644).</summary>
    public uint Mode { get; init; }

    public uint Uid { get; init; }

    public uint Gid { get; init; }

    public DateTimeOffset ModifiedAt { get; init; }

    /// <summary>A symlink's target, as written.</summary>
    public string? Target { get; init; }
}
