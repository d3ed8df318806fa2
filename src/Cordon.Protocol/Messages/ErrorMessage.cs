namespace Cordon.Protocol;

/// <summary>Why the agent refused or failed a request. <see cref="Code"/> is one of <see cref="AgentErrorCodes"/>.</summary>
public sealed record ErrorMessage(string Code, string Message);
