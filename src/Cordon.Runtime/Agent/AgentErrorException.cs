namespace Cordon.Runtime.Agent;

/// <summary>The agent refused or failed a request; <see cref="Code"/> is one of <see cref="Protocol.AgentErrorCodes"/>
/// and the message is written for the caller (paths inside the sandbox only).</summary>
public sealed class AgentErrorException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}
