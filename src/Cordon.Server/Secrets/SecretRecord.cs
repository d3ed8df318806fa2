namespace Cordon.Server.Secrets;

/// <summary>A stored secret. Its value leaves the server only in a request header, through the egress proxy, to one
/// of the hosts its owner allowed.</summary>
/// <param name="Owner">The API key that created it; only that key's sandboxes may use it.</param>
/// <param name="Hosts">Domain patterns its value may be sent to; empty: only where a header rule of a sandbox's
/// policy sends it.</param>
public sealed record SecretRecord(string Id, string Owner, string Name, string Value, IReadOnlyList<string> Hosts,
    IReadOnlyDictionary<string, string> Metadata, long Version, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    /// <summary>Its value may go to <paramref name="host"/> (lower case, no trailing dot).</summary>
    public bool AllowsHost(string host) => Hosts.Any(h => Network.EgressRule.Parse(h).MatchesName(host));

    public Protocol.Api.SecretInfo ToInfo() => new()
    {
        Id = Id,
        Name = Name,
        Hosts = Hosts,
        Metadata = Metadata,
        Version = Version,
        CreatedAt = CreatedAt,
        UpdatedAt = UpdatedAt,
    };
}
