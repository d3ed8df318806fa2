namespace Cordon.Protocol.Api;

/// <summary>An image as the REST API describes it.</summary>
public sealed record ImageInfo
{
    public required string Name { get; init; }

    /// <summary><c>ready</c>, <c>building</c> or <c>failed</c>.</summary>
    public required string Status { get; init; }

    /// <summary>Content address of the image (sha256 over its layers and config).</summary>
    public string? Digest { get; init; }

    public IReadOnlyList<string> Layers { get; init; } = [];

    public long SizeBytes { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>While building: the last progress line; when failed: why.</summary>
    public string? Message { get; init; }

    /// <summary>Environment every sandbox of the image starts with.</summary>
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();

    public string User { get; init; } = "root";

    public string WorkingDir { get; init; } = "/";

    /// <summary>A built image's file system above <see cref="Layers"/>: the build's snapshots, oldest first (empty for
    /// pulled and imported images).</summary>
    public IReadOnlyList<string> Snapshots { get; init; } = [];

    /// <summary>The image's ENTRYPOINT, or null.</summary>
    public IReadOnlyList<string>? Entrypoint { get; init; }

    /// <summary>The image's CMD, or null.</summary>
    public IReadOnlyList<string>? Cmd { get; init; }

    /// <summary>A shell command every new sandbox of the image starts in the background (a server, say) before the
    /// create answers; null for none.</summary>
    public string? StartCmd { get; init; }

    /// <summary>A shell command run (as the image's user) until it exits 0 before the create answers, so the start
    /// command's service is up when the caller first reaches it; null to wait for nothing.</summary>
    public string? ReadyCmd { get; init; }
}
