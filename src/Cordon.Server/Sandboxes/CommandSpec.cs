using Cordon.Protocol;

namespace Cordon.Server.Sandboxes;

/// <summary>A command to start, as every interface asks for it; the service validates it and hands it to the
/// sandbox's agent.</summary>
public sealed record CommandSpec
{
    /// <summary>Program and arguments; <see cref="Shell"/> makes <c>["/bin/sh", "-c", line]</c>.</summary>
    public required IReadOnlyList<string> Argv { get; init; }

    /// <summary>Variables added to (or replacing) the sandbox's environment.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }

    /// <summary>Absolute working directory; the user's home when null.</summary>
    public string? Cwd { get; init; }

    /// <summary>User name or uid inside the sandbox; the sandbox's default user when null.</summary>
    public string? User { get; init; }

    /// <summary>Kill the command after this long; the server's default when null.</summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>Keep standard input open for writes; otherwise the command reads end-of-file.</summary>
    public bool Stdin { get; init; }

    /// <summary>Run on a pseudo-terminal of this size.</summary>
    public TerminalSize? Terminal { get; init; }

    /// <summary>One shell command line, run by <c>/bin/sh -c</c>.</summary>
    public static CommandSpec Shell(string line) => new() { Argv = ["/bin/sh", "-c", line] };

    public static CommandSpec Program(params IReadOnlyList<string> argv) => new() { Argv = argv };

    /// <summary>Whether this is a shell line (whose emptiness is checked on the line, not the program).</summary>
    internal bool IsShellLine => Argv is ["/bin/sh", "-c", _];
}
