namespace Cordon.Protocol;

/// <summary>One code context as the agent knows it.</summary>
public sealed record ContextInfo
{
    public required string Id { get; init; }

    /// <summary>The language the caller asked for, normalised (<c>python</c>, <c>javascript</c> …).</summary>
    public required string Language { get; init; }

    /// <summary>The Jupyter kernel serving it, or null when Cordon's own driver does.</summary>
    public string? Kernel { get; init; }

    public required string Cwd { get; init; }

    /// <summary>See <see cref="ContextStates"/>.</summary>
    public required string State { get; init; }

    /// <summary>Runs so far (the Jupyter execution count).</summary>
    public int ExecutionCount { get; init; }

    /// <summary>The interpreter's pid inside the sandbox.</summary>
    public int Pid { get; init; }

    /// <summary>Why the interpreter ended, when <see cref="State"/> is <c>dead</c>.</summary>
    public string? ExitReason { get; init; }

    /// <summary>Unix milliseconds.</summary>
    public long CreatedAt { get; init; }
}

/// <summary>The states of a code context.</summary>
public static class ContextStates
{
    public const string Idle = "idle";
    public const string Busy = "busy";

    /// <summary>The interpreter ended (it was killed, ran out of memory, or the code exited); restart the context.</summary>
    public const string Dead = "dead";
}

public sealed record ContextListResponse(IReadOnlyList<ContextInfo> Contexts);
