namespace Cordon.Protocol.Api;

/// <summary>Answer of <c>GET /v1/sandboxes/{id}/files/list</c>.</summary>
public sealed record FileListing(string Path, IReadOnlyList<FileEntry> Entries);
