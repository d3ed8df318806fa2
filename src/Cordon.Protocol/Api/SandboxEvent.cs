namespace Cordon.Protocol.Api;

/// <summary>One entry of a sandbox's history (<c>GET /v1/sandboxes/{id}/events</c>).</summary>
public sealed record SandboxEvent(DateTimeOffset At, string Kind, string Message);
