namespace Cordon.Protocol;

/// <summary>Runs one command. Answered by <see cref="FrameKind.Started"/>, output frames, then <see cref="FrameKind.Exit"/>.</summary>
/// <remarks>The command runs in its own session and process group; a timeout, a signal request or the
/// client going away reaches the whole group.</remarks>
public sealed record ExecRequest : AgentRequest
{
    /// <summary>Program and arguments; the program is looked up in PATH when it has no slash.</summary>
    public required IReadOnlyList<string> Argv { get; init; }

    /// <summary>Variables added to (or replacing) the sandbox's base environment.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }

    /// <summary>Working directory; the user's home directory when null.</summary>
    public string? Cwd { get; init; }

    /// <summary>User name or numeric uid (optionally <c>uid:gid</c>); the sandbox's default user when null.</summary>
    public string? User { get; init; }

    /// <summary>Kill the command's process group after this long; no limit when null or zero.</summary>
    public long? TimeoutMs { get; init; }

    /// <summary>Keep standard input open for <see cref="FrameKind.Stdin"/> frames; otherwise it reads end-of-file.</summary>
    public bool Stdin { get; init; }

    /// <summary>Run on a pseudo-terminal of this size (an interactive shell): its output arrives as
    /// <see cref="FrameKind.Stdout"/>, <see cref="FrameKind.Stdin"/> frames are typed into it, and
    /// <see cref="FrameKind.Resize"/> frames change its size.</summary>
    public TerminalSize? Pty { get; init; }
}

/// <summary>A terminal's size in character cells.</summary>
public sealed record TerminalSize(int Cols, int Rows);
