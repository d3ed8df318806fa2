namespace Cordon.Protocol.Api;

/// <summary>Everything a code run produced (<c>POST /v1/sandboxes/{id}/code</c> without streaming).</summary>
public sealed record CodeRunResult
{
    /// <summary><c>ok</c>, <c>error</c>, <c>interrupted</c>, <c>timeout</c> or <c>died</c>.</summary>
    public required string Status { get; init; }

    public string Stdout { get; init; } = "";

    public string Stderr { get; init; } = "";

    /// <summary>The value of the last expression (<c>isMainResult</c>) and every display (figures …), in order,
    /// each as a MIME bundle in <c>data</c>.</summary>
    public IReadOnlyList<CodeEvent> Results { get; init; } = [];

    /// <summary>The error the code raised, when it did.</summary>
    public CodeError? Error { get; init; }

    public int? ExecutionCount { get; init; }

    public string? ContextId { get; init; }

    public long DurationMs { get; init; }

    /// <summary>Output beyond the server's cap was dropped (the start and the end are kept); stream for all of it.</summary>
    public bool OutputTruncated { get; init; }
}

/// <summary>An error raised by code: its type, message and traceback.</summary>
public sealed record CodeError(string Name, string Value, IReadOnlyList<string> Traceback);

/// <summary>The contexts of a sandbox (<c>GET /v1/sandboxes/{id}/contexts</c>).</summary>
public sealed record ContextList(IReadOnlyList<ContextInfo> Contexts);
