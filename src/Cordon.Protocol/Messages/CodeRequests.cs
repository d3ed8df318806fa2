namespace Cordon.Protocol;

/// <summary>Starts a code context: one live interpreter for one language. Answered by a <see cref="ContextInfo"/>
/// once the interpreter is ready (a Jupyter kernel takes a second or two).</summary>
public sealed record CreateContextRequest : AgentRequest
{
    /// <summary><c>python</c>, <c>javascript</c>, <c>typescript</c>, <c>bash</c>, or any language (or kernel name)
    /// of a Jupyter kernel installed in the image.</summary>
    public required string Language { get; init; }

    /// <summary>Working directory; the user's home directory when null.</summary>
    public string? Cwd { get; init; }

    /// <summary>Variables added to the sandbox's base environment.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }

    /// <summary>User name or uid the interpreter runs as; the sandbox's default user when null.</summary>
    public string? User { get; init; }
}

/// <summary>Lists the sandbox's contexts. Answered by a <see cref="ContextListResponse"/>.</summary>
public sealed record ListContextsRequest : AgentRequest;

/// <summary>Stops a context's interpreter and forgets it. Answered by <c>{}</c>.</summary>
public sealed record DeleteContextRequest : AgentRequest
{
    public required string Id { get; init; }
}

/// <summary>Replaces a context's interpreter with a fresh one (its state is lost). Answered by a <see cref="ContextInfo"/>.</summary>
public sealed record RestartContextRequest : AgentRequest
{
    public required string Id { get; init; }
}

/// <summary>Interrupts the code running in a context (KeyboardInterrupt in Python); the context keeps its
/// state. Answered by <c>{}</c>.</summary>
public sealed record InterruptContextRequest : AgentRequest
{
    public required string Id { get; init; }
}

/// <summary>Runs code in a context. Answered by <see cref="FrameKind.CodeEvent"/> frames that end with an
/// event of type <c>end</c>. A <see cref="FrameKind.Signal"/> frame interrupts the run, and so does the
/// client going away.</summary>
public sealed record RunCodeRequest : AgentRequest
{
    public required string Code { get; init; }

    /// <summary>The context to run in; when null, the default context of <see cref="Language"/>, started on first use.</summary>
    public string? ContextId { get; init; }

    /// <summary>Used when <see cref="ContextId"/> is null; <c>python</c> when both are null.</summary>
    public string? Language { get; init; }

    /// <summary>Interrupt the run after this long (the context survives); no limit when null or zero.</summary>
    public long? TimeoutMs { get; init; }

    /// <summary>Environment variables set for this run only (restored afterwards).</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }
}
