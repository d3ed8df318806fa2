using Cordon.Server.Sandboxes;

namespace Cordon.Server.Shapes;

/// <summary>How the service's enums appear on the wire of every interface: their lowercase names.</summary>
public static class WireNames
{
    public static string Of(SandboxState state) => state switch
    {
        SandboxState.Creating => "creating",
        SandboxState.Running => "running",
        SandboxState.Paused => "paused",
        SandboxState.Stopped => "stopped",
        _ => "ended",
    };

    public static string Of(TimerAction action) => action switch
    {
        TimerAction.Pause => "pause",
        TimerAction.Stop => "stop",
        _ => "destroy",
    };

    /// <summary>A timer action by its wire name; null when it names none.</summary>
    public static TimerAction? ParseAction(string? name) => name switch
    {
        "pause" => TimerAction.Pause,
        "stop" => TimerAction.Stop,
        "destroy" => TimerAction.Destroy,
        _ => null,
    };

    public static string Of(EndReason reason) => reason switch
    {
        EndReason.Deleted => "deleted",
        EndReason.Expired => "expired",
        EndReason.Lost => "lost",
        EndReason.Exited => "exited",
        _ => "failed",
    };

    public static string Of(CodeRunStatus status) => status switch
    {
        CodeRunStatus.Ok => "ok",
        CodeRunStatus.Error => "error",
        CodeRunStatus.Interrupted => "interrupted",
        CodeRunStatus.Timeout => "timeout",
        _ => "died",
    };

    /// <summary>A sandbox state by its wire name; null when it names none.</summary>
    public static SandboxState? ParseState(string? name) => name switch
    {
        "creating" => SandboxState.Creating,
        "running" => SandboxState.Running,
        "paused" => SandboxState.Paused,
        "stopped" => SandboxState.Stopped,
        "ended" => SandboxState.Ended,
        _ => null,
    };
}
