namespace Cordon.Protocol;

/// <summary>The entries of a directory listing, sorted by path.</summary>
public sealed record ListResponse(IReadOnlyList<FileEntry> Entries);
