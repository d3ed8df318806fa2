using Cordon.Protocol.Api;

namespace Cordon.Server.Mcp;

/// <summary>list_sandboxes' structured result.</summary>
public sealed record SandboxListOutput(IReadOnlyList<SandboxInfo> Sandboxes, string? SessionSandboxId);

/// <summary>What list_snapshots returns.</summary>
public sealed record SnapshotListOutput(IReadOnlyList<SnapshotInfo> Snapshots);

/// <summary>A command's state and output since the cursors (run_command, read_command_output, wait_command).</summary>
public sealed record CommandOutput
{
    public required string Handle { get; init; }

    public required string SandboxId { get; init; }

    public bool Running { get; init; }

    public int? ExitCode { get; init; }

    public int? Signal { get; init; }

    public bool? TimedOut { get; init; }

    public string Stdout { get; init; } = "";

    public string Stderr { get; init; } = "";

    /// <summary>Part of the output is not in this result; the cursors page through it.</summary>
    public bool Truncated { get; init; }

    public long NextStdoutCursor { get; init; }

    public long NextStderrCursor { get; init; }
}
