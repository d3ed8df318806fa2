using Cordon.Protocol;

namespace Cordon.Server.Sandboxes;

/// <summary>Which stream a command's output came on.</summary>
public enum CommandStream
{
    Stdout,
    Stderr,
}

/// <summary>One event of a running command: a chunk of output (its bytes, and its text decoded per stream so a
/// character split across chunks stays whole), or its end.</summary>
public sealed record CommandEvent
{
    public CommandStream Stream { get; init; }

    public ReadOnlyMemory<byte> Data { get; init; }

    public string Text { get; init; } = "";

    /// <summary>Set on the last event: how the command ended.</summary>
    public ExitMessage? Exit { get; init; }
}
