namespace Cordon.Protocol;

/// <summary>Settings a sandbox gets after its agent started: a sandbox taken from a warm pool gets its creator's
/// environment this way. Variables are added to (or replace) those every command inherits; default code contexts
/// started ahead start again on their next use, so they see them too.</summary>
public sealed record ConfigureRequest : AgentRequest
{
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
}
