namespace Cordon.Server.Volumes;

/// <summary>Named storage owned by a key, mounted into its sandboxes at create; it outlives every sandbox.</summary>
public sealed record VolumeRecord
{
    /// <summary><c>vol_</c> and 20 lowercase letters and digits.</summary>
    public required string Id { get; init; }

    public required string Owner { get; init; }

    /// <summary>Unique per key.</summary>
    public required string Name { get; init; }

    /// <summary>Its size: writes beyond it fail with "no space left".</summary>
    public long SizeMiB { get; init; }

    /// <summary>The credential of E2B's volume content API (<c>Authorization: Bearer</c>), which names no API key.</summary>
    public required string Token { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }
}

/// <summary>A file, directory or symlink of a volume. Owners are ids as sandboxes see them (0 is root).</summary>
public sealed record VolumeFile(string Name, string Path, string Type, long Size, uint Mode, uint Uid, uint Gid,
    DateTimeOffset AccessedAt, DateTimeOffset ModifiedAt, DateTimeOffset ChangedAt, string? Target);
