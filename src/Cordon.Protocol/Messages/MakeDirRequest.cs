namespace Cordon.Protocol;

/// <summary>Creates a directory (and its parents). Answered by a <see cref="FileEntry"/>; existing directories are not an error.</summary>
public sealed record MakeDirRequest : AgentRequest
{
    public required string Path { get; init; }

    public string? User { get; init; }
}
