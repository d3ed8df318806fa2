namespace Cordon.Server;

/// <summary>What <c>cordon serve</c> passes to the server from its command line; everything else comes from configuration.</summary>
public sealed record ServerSettings
{
    /// <summary><c>host:port</c> to listen on.</summary>
    public string Listen { get; init; } = "127.0.0.1:7411";

    public string? DataDir { get; init; }

    /// <summary><c>crun</c> or <c>runc</c>.</summary>
    public string? Runtime { get; init; }

    /// <summary>Extra configuration keys (tests use these).</summary>
    public IReadOnlyDictionary<string, string?> Overrides { get; init; } = new Dictionary<string, string?>();
}
