namespace Cordon.Protocol.Api;

/// <summary>Body of <c>POST /v1/sandboxes/{id}/files/rename</c>.</summary>
public sealed record RenameRequestBody(string From, string To);
