namespace Cordon.Protocol;

/// <summary>Lists a directory. Answered by a <see cref="ListResponse"/>.</summary>
public sealed record ListRequest : AgentRequest
{
    /// <summary>Who the request acts as (name or uid): it is done with that user's rights. The sandbox's default
    /// user when null.</summary>
    public string? User { get; init; }

    public required string Path { get; init; }

    /// <summary>1 lists the directory itself; larger values descend that many levels.</summary>
    public int Depth { get; init; } = 1;
}
