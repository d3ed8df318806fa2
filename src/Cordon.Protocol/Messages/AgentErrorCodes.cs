namespace Cordon.Protocol;

/// <summary>The error codes the agent sends; the server maps each to an API status once.</summary>
public static class AgentErrorCodes
{
    public const string NotFound = "not_found";
    public const string InvalidArgument = "invalid_argument";
    public const string PermissionDenied = "permission_denied";
    public const string AlreadyExists = "already_exists";
    public const string NotADirectory = "not_a_directory";
    public const string IsADirectory = "is_a_directory";
    public const string NoSpace = "no_space";
    public const string Internal = "internal";

    /// <summary>The target is in a state that forbids the request (a dead code context, too many contexts).</summary>
    public const string Conflict = "conflict";
}
