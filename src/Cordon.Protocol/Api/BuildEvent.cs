namespace Cordon.Protocol.Api;

/// <summary>One line of an image build's log (<c>GET /v1/images/{name}/build</c>, NDJSON).</summary>
/// <remarks><c>type</c> is <c>step</c> (a step begins; <c>cached</c> when the step cache had it), <c>output</c> (a line
/// a RUN printed), <c>info</c>, <c>warning</c>, <c>error</c> (the build failed: <c>message</c> says why; for a failed
/// step also <c>exitCode</c> and <c>lastLines</c>), and last <c>done</c> (<c>status</c> <c>ready</c> or
/// <c>failed</c>).</remarks>
public sealed record BuildEvent
{
    /// <summary>Its place in the log (0 for the first line); read on from the next one with <c>?offset=</c>.</summary>
    public long Offset { get; init; }

    public DateTimeOffset Time { get; init; }

    public required string Type { get; init; }

    /// <summary>The step (1-based) over <see cref="Steps"/>, counting every instruction of the stages built.</summary>
    public int? Step { get; init; }

    public int? Steps { get; init; }

    /// <summary>The stage's name, or its number when it has none.</summary>
    public string? Stage { get; init; }

    /// <summary>The instruction, as written (continuation lines joined).</summary>
    public string? Instruction { get; init; }

    public bool? Cached { get; init; }

    /// <summary><c>stdout</c> or <c>stderr</c>, for <c>output</c>.</summary>
    public string? Stream { get; init; }

    public string? Message { get; init; }

    public int? ExitCode { get; init; }

    /// <summary>The failed step's last output lines.</summary>
    public IReadOnlyList<string>? LastLines { get; init; }

    /// <summary><c>ready</c> or <c>failed</c>, for <c>done</c>.</summary>
    public string? Status { get; init; }
}
