using System.Globalization;

namespace Cordon.Server.Sandboxes;

/// <summary>Linux signals by number, name and description: the one table every interface reads (MCP's
/// <c>signal_command</c> names, E2B's <c>SIGNAL_SIGKILL</c>, the descriptions E2B's envd reports like Go's
/// <c>"signal: killed"</c>).</summary>
public static class Signals
{
    public const int Interrupt = 2;
    public const int Kill = 9;
    public const int Terminate = 15;

    // x86-64 and arm64 numbers; descriptions as Go's syscall.Signal.String() gives them.
    private static readonly (int Number, string Name, string Description)[] Table =
    [
        (1, "HUP", "hangup"), (2, "INT", "interrupt"), (3, "QUIT", "quit"), (4, "ILL", "illegal instruction"),
        (5, "TRAP", "trace/breakpoint trap"), (6, "ABRT", "aborted"), (7, "BUS", "bus error"), (8, "FPE", "floating point exception"),
        (9, "KILL", "killed"), (10, "USR1", "user defined signal 1"), (11, "SEGV", "segmentation fault"), (12, "USR2", "user defined signal 2"),
        (13, "PIPE", "broken pipe"), (14, "ALRM", "alarm clock"), (15, "TERM", "terminated"), (17, "CHLD", "child exited"),
        (18, "CONT", "continued"), (19, "STOP", "stopped (signal)"), (20, "TSTP", "stopped"), (21, "TTIN", "stopped (tty input)"),
        (22, "TTOU", "stopped (tty output)"), (24, "XCPU", "CPU time limit exceeded"), (25, "XFSZ", "file size limit exceeded"),
        (28, "WINCH", "window changed"), (31, "SYS", "bad system call"),
    ];

    /// <summary>A signal by name (<c>TERM</c>, <c>SIGTERM</c>, <c>sigterm</c>) or number (1–64); null when it is neither.</summary>
    public static int? Parse(string? signal)
    {
        if (string.IsNullOrWhiteSpace(signal))
        {
            return null;
        }

        var text = signal.Trim();
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return number is >= 1 and <= 64 ? number : null;
        }

        var name = text.ToUpperInvariant();
        name = name.StartsWith("SIG", StringComparison.Ordinal) ? name[3..] : name;
        foreach (var entry in Table)
        {
            if (entry.Name == name)
            {
                return entry.Number;
            }
        }

        return null;
    }

    /// <summary>The signal's name without <c>SIG</c> (<c>TERM</c>), or its number.</summary>
    public static string Name(int signal)
        => Array.Find(Table, e => e.Number == signal).Name ?? signal.ToString(CultureInfo.InvariantCulture);

    /// <summary>The signal's description (<c>killed</c>, <c>terminated</c>), or <c>signal N</c>.</summary>
    public static string Describe(int signal)
        => Array.Find(Table, e => e.Number == signal).Description ?? "signal " + signal.ToString(CultureInfo.InvariantCulture);

    /// <summary>The names a caller may use, for messages.</summary>
    public static string Known => string.Join(", ", Table.Select(e => e.Name));
}
