namespace Cordon.Protocol;

/// <summary>Removes a file, symlink or directory tree. Answered by an empty <see cref="FrameKind.Response"/>.</summary>
public sealed record RemoveRequest : AgentRequest
{
    /// <summary>Who the request acts as (name or uid): it is done with that user's rights. The sandbox's default
    /// user when null.</summary>
    public string? User { get; init; }

    public required string Path { get; init; }
}
