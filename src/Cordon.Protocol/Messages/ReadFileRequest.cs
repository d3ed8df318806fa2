namespace Cordon.Protocol;

/// <summary>Reads a regular file. Answered by a <see cref="FileEntry"/> response, data frames and <see cref="FrameKind.DataEnd"/>.</summary>
public sealed record ReadFileRequest : AgentRequest
{
    /// <summary>Who the request acts as (name or uid): it is done with that user's rights. The sandbox's default
    /// user when null.</summary>
    public string? User { get; init; }

    public required string Path { get; init; }
}
