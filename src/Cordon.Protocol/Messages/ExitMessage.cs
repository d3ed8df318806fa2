namespace Cordon.Protocol;

/// <summary>How a command ended: an exit code, or the signal that killed it.</summary>
public sealed record ExitMessage
{
    /// <summary>The exit status, or 128 + signal number when a signal ended the command (as shells report it).</summary>
    public int ExitCode { get; init; }

    /// <summary>The signal that ended the command, when one did.</summary>
    public int? Signal { get; init; }

    /// <summary>The agent killed the command because its timeout passed.</summary>
    public bool TimedOut { get; init; }

    public long DurationMs { get; init; }
}
