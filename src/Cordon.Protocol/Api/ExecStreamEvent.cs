namespace Cordon.Protocol.Api;

/// <summary>One line of the NDJSON stream of <c>POST /v1/sandboxes/{id}/exec</c> with <c>Accept: application/x-ndjson</c>.</summary>
public sealed record ExecStreamEvent
{
    /// <summary><c>started</c>, <c>stdout</c>, <c>stderr</c>, <c>exit</c> or <c>error</c>.</summary>
    public required string Type { get; init; }

    /// <summary>For <c>started</c>: the command's pid inside the sandbox.</summary>
    public int? Pid { get; init; }

    /// <summary>For <c>stdout</c>/<c>stderr</c>: the text (UTF-8; invalid bytes replaced).</summary>
    public string? Data { get; init; }

    public int? ExitCode { get; init; }

    public int? Signal { get; init; }

    public bool? TimedOut { get; init; }

    public long? DurationMs { get; init; }

    /// <summary>For <c>error</c>: what went wrong.</summary>
    public string? Message { get; init; }
}
