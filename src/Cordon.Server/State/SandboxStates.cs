namespace Cordon.Server.State;

/// <summary>The states of a sandbox's lifecycle.</summary>
public static class SandboxStates
{
    public const string Creating = "creating";
    public const string Running = "running";
    public const string Paused = "paused";
    public const string Ended = "ended";
}
