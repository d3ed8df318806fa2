namespace Cordon.Protocol.Api;

/// <summary>Body of <c>POST /v1/sandboxes/{id}/timeout</c>: the sandbox now expires this many seconds from now.</summary>
public sealed record SetTimeoutRequest(int TimeoutSeconds);
