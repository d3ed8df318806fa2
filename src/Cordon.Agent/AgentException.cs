namespace Cordon.Agent;

/// <summary>An expected failure of a request, sent to the client as an <see cref="Protocol.ErrorMessage"/>.</summary>
internal sealed class AgentException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}
