namespace Cordon.Protocol;

/// <summary>Lists a directory. Answered by a <see cref="ListResponse"/>.</summary>
public sealed record ListRequest : AgentRequest
{
    public required string Path { get; init; }

    /// <summary>1 lists the directory itself; larger values descend that many levels.</summary>
    public int Depth { get; init; } = 1;
}
