namespace Cordon.Client;

/// <summary>The server answered with an error (a problem details document).</summary>
public sealed class CordonApiException(int status, string code, string message) : Exception(message)
{
    /// <summary>The HTTP status.</summary>
    public int Status { get; } = status;

    /// <summary>The server's stable error code, e.g. <c>sandbox_not_found</c>.</summary>
    public string Code { get; } = code;
}
