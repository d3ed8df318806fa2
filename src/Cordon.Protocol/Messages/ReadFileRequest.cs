namespace Cordon.Protocol;

/// <summary>Reads a regular file. Answered by a <see cref="FileEntry"/> response, data frames and <see cref="FrameKind.DataEnd"/>.</summary>
public sealed record ReadFileRequest : AgentRequest
{
    public required string Path { get; init; }
}
