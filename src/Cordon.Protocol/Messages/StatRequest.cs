namespace Cordon.Protocol;

/// <summary>Describes one path without following a final symlink. Answered by a <see cref="FileEntry"/>.</summary>
public sealed record StatRequest : AgentRequest
{
    public required string Path { get; init; }
}
