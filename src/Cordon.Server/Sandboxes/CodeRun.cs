using Cordon.Protocol;
using Cordon.Protocol.Api;

namespace Cordon.Server.Sandboxes;

/// <summary>Everything a finished code run produced: text output capped (head and tail kept), results (the last
/// expression's value and every display, each a MIME bundle) in order, the error it raised.</summary>
public sealed record CodeRun
{
    public required CodeRunStatus Status { get; init; }

    public string Stdout { get; init; } = "";

    public string Stderr { get; init; } = "";

    public IReadOnlyList<CodeEvent> Results { get; init; } = [];

    public CodeError? Error { get; init; }

    public int? ExecutionCount { get; init; }

    public string? ContextId { get; init; }

    public long DurationMs { get; init; }

    /// <summary>Output beyond the cap was left out (the start and the end are kept).</summary>
    public bool OutputTruncated { get; init; }
}
