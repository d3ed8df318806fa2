using System.Text.Json;

namespace Cordon.Protocol;

/// <summary>One event of a code run, as a notebook would show it. The same shape travels from the
/// interpreter's driver to the agent, from the agent to the server, and out of the REST API as NDJSON.</summary>
/// <remarks><see cref="Type"/> is one of <see cref="CodeEventTypes"/>.</remarks>
public sealed record CodeEvent
{
    public required string Type { get; init; }

    /// <summary>stdout and stderr: the text written.</summary>
    public string? Text { get; init; }

    /// <summary>result: the MIME bundle (<c>text/plain</c>, <c>image/png</c> as base64, <c>text/html</c>,
    /// <c>application/json</c> …).</summary>
    public Dictionary<string, JsonElement>? Data { get; init; }

    /// <summary>result: the bundle's metadata (image sizes …), when the kernel sent any.</summary>
    public JsonElement? Metadata { get; init; }

    /// <summary>result: true for the value of the cell's last expression, false for other displays (figures …).</summary>
    public bool? IsMainResult { get; init; }

    /// <summary>result and end: the run's number in its context.</summary>
    public int? ExecutionCount { get; init; }

    /// <summary>error: the exception's type, e.g. <c>ZeroDivisionError</c>.</summary>
    public string? Name { get; init; }

    /// <summary>error: the exception's message. failed: why the context could not start.</summary>
    public string? Value { get; init; }

    /// <summary>error: the traceback, one entry per line or frame, without terminal colours.</summary>
    public IReadOnlyList<string>? Traceback { get; init; }

    /// <summary>end: <c>ok</c>, <c>error</c>, <c>interrupted</c>, <c>timeout</c> or <c>died</c>.</summary>
    public string? Status { get; init; }

    /// <summary>end, bash: the exit status of the run's last command.</summary>
    public int? ExitCode { get; init; }

    /// <summary>end: how long the run took, in milliseconds.</summary>
    public long? DurationMs { get; init; }

    /// <summary>end: the context the code ran in.</summary>
    public string? ContextId { get; init; }

    /// <summary>ready (driver to agent only): the Jupyter kernel, or null.</summary>
    public string? Kernel { get; init; }

    /// <summary>ready (driver to agent only): the language served.</summary>
    public string? Language { get; init; }

    /// <summary>ready (driver to agent only): how to interrupt it: <c>message</c>, <c>signal</c> or <c>group</c>.</summary>
    public string? Interrupt { get; init; }

    /// <summary>ready (driver to agent only): the driver ends each run's stdout and stderr with the marker it was
    /// given, so the agent can wait for every byte of a run before its end.</summary>
    public bool? Markers { get; init; }
}

/// <summary>The values of <see cref="CodeEvent.Type"/>.</summary>
public static class CodeEventTypes
{
    public const string Stdout = "stdout";
    public const string Stderr = "stderr";
    public const string Result = "result";
    public const string Error = "error";
    public const string End = "end";

    /// <summary>Driver to agent: the interpreter is ready for code.</summary>
    public const string Ready = "ready";

    /// <summary>Driver to agent: the interpreter cannot start (the message says why).</summary>
    public const string Failed = "failed";
}

/// <summary>The values of <see cref="CodeEvent.Status"/> on an end event.</summary>
public static class CodeRunStatus
{
    public const string Ok = "ok";
    public const string Error = "error";
    public const string Interrupted = "interrupted";
    public const string Timeout = "timeout";
    public const string Died = "died";
}
