namespace Cordon.Protocol.Api;

/// <summary>A secret as the API describes it: never its value, which is write-only.</summary>
public sealed record SecretInfo
{
    /// <summary><c>sec_</c> and 20 lowercase letters and digits.</summary>
    public required string Id { get; init; }

    /// <summary>Lower case; unique per API key.</summary>
    public required string Name { get; init; }

    /// <summary>Where its value may go: the hosts (<c>api.example.com</c>, <c>*.example.com</c>) whose HTTPS
    /// requests the proxy puts it in. Empty: only where a header rule of the sandbox's policy puts it.</summary>
    public IReadOnlyList<string> Hosts { get; init; } = [];

    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>1 at creation, one more at each change of its value.</summary>
    public long Version { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>Body of <c>POST /v1/secrets</c>.</summary>
public sealed record CreateSecretRequest
{
    /// <summary>Letters, digits, <c>.</c>, <c>_</c> and <c>-</c>, up to 64; stored in lower case.</summary>
    public required string Name { get; init; }

    /// <summary>The value, up to 16 KiB, on one line (it travels in an HTTP header).</summary>
    public required string Value { get; init; }

    /// <summary>Hosts whose HTTPS requests may carry it (see <see cref="SecretInfo.Hosts"/>).</summary>
    public IReadOnlyList<string>? Hosts { get; init; }

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
}

/// <summary>Body of <c>PUT /v1/secrets/{name}</c>: fields left out keep their value.</summary>
public sealed record UpdateSecretRequest
{
    public string? Value { get; init; }

    public IReadOnlyList<string>? Hosts { get; init; }

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
}
