namespace Cordon.Protocol;

/// <summary>Describes one path without following a final symlink. Answered by a <see cref="FileEntry"/>.</summary>
public sealed record StatRequest : AgentRequest
{
    /// <summary>Who the request acts as (name or uid): it is done with that user's rights. The sandbox's default
    /// user when null.</summary>
    public string? User { get; init; }

    public required string Path { get; init; }
}
