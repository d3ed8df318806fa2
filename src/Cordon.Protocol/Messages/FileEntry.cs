namespace Cordon.Protocol;

/// <summary>One file system entry as seen inside the sandbox.</summary>
public sealed record FileEntry
{
    public required string Name { get; init; }

    /// <summary>Absolute path inside the sandbox.</summary>
    public required string Path { get; init; }

    /// <summary>One of <c>file</c>, <c>dir</c>, <c>symlink</c>, <c>other</c>.</summary>
    public required string Type { get; init; }

    public long Size { get; init; }

    /// <summary>Permission bits (e.g. 0644 as 420).</summary>
    public int Mode { get; init; }

    public int Uid { get; init; }

    public int Gid { get; init; }

    public DateTimeOffset ModifiedAt { get; init; }

    /// <summary>Where a symlink points, as stored in the link.</summary>
    public string? SymlinkTarget { get; init; }
}
