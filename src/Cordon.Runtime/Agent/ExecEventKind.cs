namespace Cordon.Runtime.Agent;

/// <summary>What an <see cref="ExecEvent"/> carries.</summary>
public enum ExecEventKind
{
    Stdout,
    Stderr,
    Exit,
}
