namespace Cordon.Protocol.Api;

/// <summary>How a command ended and what it printed (<c>POST /v1/sandboxes/{id}/exec</c> without streaming).</summary>
public sealed record ExecResult
{
    /// <summary>The exit status; 128 + n when signal n killed the command; 127 when the program was not found.</summary>
    public int ExitCode { get; init; }

    public string Stdout { get; init; } = "";

    public string Stderr { get; init; } = "";

    /// <summary>The command was killed because its timeout passed.</summary>
    public bool TimedOut { get; init; }

    public long DurationMs { get; init; }

    /// <summary>The signal that ended the command, if one did.</summary>
    public int? Signal { get; init; }

    /// <summary>Output beyond the server's cap was dropped (the tail is kept); use streaming for large output.</summary>
    public bool OutputTruncated { get; init; }
}
