namespace Cordon.Protocol;

/// <summary>Renames a path. Answered by the <see cref="FileEntry"/> of the destination.</summary>
public sealed record RenameRequest : AgentRequest
{
    public required string From { get; init; }

    public required string To { get; init; }
}
