namespace Cordon.Protocol;

/// <summary>Creates a directory (and its parents). Answered by a <see cref="FileEntry"/>; existing directories are not an error.</summary>
public sealed record MakeDirRequest : AgentRequest
{
    public required string Path { get; init; }

    /// <summary>Who makes the directory (name or uid), with that user's rights; new directories are theirs. The
    /// sandbox's default user when null.</summary>
    public string? User { get; init; }
}
