using Cordon.Protocol;

namespace Cordon.Runtime.Agent;

/// <summary>One event of a running command: output on a stream, or its end.</summary>
public readonly record struct ExecEvent(ExecEventKind Kind, byte[] Data, ExitMessage? Exit)
{
    public static ExecEvent Output(ExecEventKind kind, ReadOnlySpan<byte> data) => new(kind, data.ToArray(), null);

    public static ExecEvent Ended(ExitMessage exit) => new(ExecEventKind.Exit, [], exit);
}
