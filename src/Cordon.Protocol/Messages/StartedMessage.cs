namespace Cordon.Protocol;

/// <summary>The command is running; <see cref="Pid"/> is its pid inside the sandbox.</summary>
public sealed record StartedMessage(int Pid);
