namespace Cordon.Server.Snapshots;

/// <summary>A saved file system of a sandbox, owned by the key that took it; new sandboxes start from it as from an
/// image. Kept in SQLite; its files are the runtime's.</summary>
public sealed record SnapshotRecord
{
    /// <summary><c>snap_</c> and 20 lowercase letters and digits.</summary>
    public required string Id { get; init; }

    public required string Owner { get; init; }

    /// <summary>Its name, unique per key; null for the snapshot a fork takes (removed with its last sandbox).</summary>
    public string? Name { get; init; }

    /// <summary>The sandbox it was taken of.</summary>
    public required string SandboxId { get; init; }

    /// <summary>The image under it.</summary>
    public required string Image { get; init; }

    /// <summary>The snapshots a sandbox from it stacks, oldest first, itself last.</summary>
    public required IReadOnlyList<string> Layers { get; init; }

    /// <summary>The user commands run as by default in its sandbox.</summary>
    public string User { get; init; } = "root";

    /// <summary>The disk size of the sandbox it was taken of; sandboxes from it get this by default.</summary>
    public long DiskMiB { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Being taken (a crash then leaves it to be removed at start) or ready.</summary>
    public bool Ready { get; init; }

    public bool Internal => Name is null;
}
