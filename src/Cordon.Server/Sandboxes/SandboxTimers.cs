namespace Cordon.Server.Sandboxes;

/// <summary>What a timer does to a sandbox when it fires. On the wire the lowercase name.</summary>
public enum TimerAction
{
    /// <summary>Freeze every process in memory (resumed in ~2 ms, the memory stays taken).</summary>
    Pause,

    /// <summary>End every process, keep the file system (started again in about a create's time, no memory held).</summary>
    Stop,

    /// <summary>Remove the sandbox and its files.</summary>
    Destroy,
}

/// <summary>A sandbox's timers, each separate: its wall-clock timeout and what it does then, the idle timer and what
/// it does then, whether a request to it wakes it, and how long it is kept once stopped.</summary>
public sealed record SandboxTimers
{
    /// <summary>What happens when the timeout passes: destroy (the default), or pause or stop to keep the work
    /// (E2B's <c>autoPause</c>).</summary>
    public TimerAction OnTimeout { get; init; } = TimerAction.Destroy;

    /// <summary>Seconds with no API call, no running command, no open stream and no proxied connection after which
    /// <see cref="OnIdle"/> happens; null for no idle timer.</summary>
    public int? IdleTimeoutSeconds { get; init; }

    public TimerAction OnIdle { get; init; } = TimerAction.Pause;

    /// <summary>Any request to the sandbox (a command, a file, a connection to one of its ports) while it is paused or
    /// stopped resumes or starts it first, transparently.</summary>
    public bool AutoResume { get; init; }

    /// <summary>Seconds a stopped sandbox is kept before it is destroyed; null keeps it until deleted.</summary>
    public int? StoppedRetentionSeconds { get; init; }
}
