namespace Cordon.Protocol;

/// <summary>Removes a file, symlink or directory tree. Answered by an empty <see cref="FrameKind.Response"/>.</summary>
public sealed record RemoveRequest : AgentRequest
{
    public required string Path { get; init; }
}
