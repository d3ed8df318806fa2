namespace Cordon.Server.Errors;

/// <summary>An expected failure: a code from the closed set <see cref="ErrorCode"/> and a message, mapped once at
/// each interface (REST problem details, MCP tool errors, E2B's error bodies and Connect codes), always by the
/// code, never by the message.</summary>
/// <remarks>The message is shown to the caller, often an AI agent, whatever interface it came through: it says
/// what failed and, where no interface is needed to say it, what to do ("retry in a moment"). Pointers to an
/// interface's own routes or tools are added by that interface from the code and <see cref="Subject"/>. It never
/// holds host paths, command lines or secrets.</remarks>
public class CordonException(ErrorCode code, string message, Exception? inner = null) : Exception(message, inner)
{
    public ErrorCode Code { get; } = code;

    /// <summary>The sandbox, image, command or context the failure is about, for hints that name it.</summary>
    public string? Subject { get; init; }

    /// <summary>Seconds after which retrying may succeed.</summary>
    public int? RetryAfterSeconds { get; init; }

    /// <summary>The code's wire name (<c>sandbox_not_found</c>).</summary>
    public string CodeName => ErrorCodes.Name(Code);

    public static CordonException Invalid(string message) => new(ErrorCode.InvalidRequest, message);
}
