namespace Cordon.Protocol;

/// <summary>Asks the agent who it is. Answered by an <see cref="InfoResponse"/>.</summary>
public sealed record InfoRequest : AgentRequest;
