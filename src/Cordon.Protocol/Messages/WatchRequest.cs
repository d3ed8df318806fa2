namespace Cordon.Protocol;

/// <summary>Watches a directory: answered by a <see cref="FrameKind.Response"/> once watching, then a
/// <see cref="FrameKind.WatchEvent"/> frame per change until the client closes the connection.</summary>
public sealed record WatchRequest : AgentRequest
{
    /// <summary>Who the request acts as (name or uid): it is done with that user's rights. The sandbox's default
    /// user when null.</summary>
    public string? User { get; init; }

    public required string Path { get; init; }

    /// <summary>Also watch every directory below, including ones created later.</summary>
    public bool Recursive { get; init; }
}

/// <summary>One change in a watched directory.</summary>
/// <param name="Name">The changed entry's path relative to the watched directory.</param>
/// <param name="Type"><c>create</c>, <c>write</c>, <c>remove</c> or <c>rename</c> (the old name; the new one
/// follows as <c>create</c>).</param>
public sealed record WatchEvent(string Name, string Type);
