namespace Cordon.Protocol;

/// <summary>Renames a path. Answered by the <see cref="FileEntry"/> of the destination.</summary>
public sealed record RenameRequest : AgentRequest
{
    /// <summary>Who the request acts as (name or uid): it is done with that user's rights. The sandbox's default
    /// user when null.</summary>
    public string? User { get; init; }

    public required string From { get; init; }

    public required string To { get; init; }
}
