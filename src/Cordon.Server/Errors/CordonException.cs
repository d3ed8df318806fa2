namespace Cordon.Server.Errors;

/// <summary>An expected failure with a stable code; mapped once at each edge (problem details for REST).</summary>
/// <remarks>The message is shown to the caller, often an AI agent: it says what failed and what to do, and
/// never holds host paths, command lines or secrets.</remarks>
public class CordonException(string code, int status, string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>A stable, machine-readable code such as <c>sandbox_not_found</c>.</summary>
    public string Code { get; } = code;

    /// <summary>The HTTP status the REST API answers with.</summary>
    public int Status { get; } = status;

    /// <summary>Seconds after which retrying may succeed (503/429).</summary>
    public int? RetryAfterSeconds { get; init; }

    public static CordonException NotFound(string code, string message) => new(code, 404, message);

    public static CordonException Invalid(string message) => new("invalid_request", 400, message);

    public static CordonException Conflict(string code, string message) => new(code, 409, message);
}
