namespace Cordon.Server.Sandboxes;

/// <summary>A command run to its end: how it ended and its output, each stream capped (head and tail kept).</summary>
public sealed record CommandResult
{
    public int ExitCode { get; init; }

    /// <summary>The signal that ended it, when one did.</summary>
    public int? Signal { get; init; }

    /// <summary>It was killed because its timeout passed.</summary>
    public bool TimedOut { get; init; }

    public long DurationMs { get; init; }

    public string Stdout { get; init; } = "";

    public string Stderr { get; init; } = "";

    /// <summary>Output beyond the cap was left out of the middle of a stream.</summary>
    public bool OutputTruncated { get; init; }
}
