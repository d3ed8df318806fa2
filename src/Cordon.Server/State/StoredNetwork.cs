using System.Text.Json;
using System.Text.Json.Serialization;
using Cordon.Server.Network;

namespace Cordon.Server.State;

/// <summary>A sandbox's network policy as its row keeps it: <c>{"internet":…,"allow":[…],"deny":[…],"headers":{…},
/// "secrets":[…]}</c> in the policy language's own words. Secrets are kept by name and placeholder, never by value.</summary>
internal sealed record StoredNetwork(bool Internet, string[]? Allow, string[]? Deny,
    Dictionary<string, Dictionary<string, string>>? Headers = null, StoredSecretBinding[]? Secrets = null)
{
    public static string Of(EgressPolicy policy)
        => JsonSerializer.Serialize(new StoredNetwork(policy.Internet, [.. policy.AllowText], [.. policy.DenyText],
            policy.Headers.Count == 0 ? null : policy.HeadersText.ToDictionary(h => h.Key, h => h.Value.ToDictionary()),
            policy.Secrets.Count == 0 ? null : [.. policy.Secrets.Select(s => new StoredSecretBinding(s.Env, s.Secret, s.Placeholder))]),
            StoredNetworkJson.Default.StoredNetwork);

    /// <summary>The policy of a row; none for rows from before networks (<c>{}</c>).</summary>
    public static EgressPolicy Parse(string json)
    {
        var stored = JsonSerializer.Deserialize(json, StoredNetworkJson.Default.StoredNetwork);
        return stored is null ? EgressPolicy.None : EgressPolicy.Parse(stored.Internet, stored.Allow, stored.Deny,
            stored.Headers?.ToDictionary(h => h.Key, h => (IReadOnlyDictionary<string, string>)h.Value)) with
        {
            Secrets = [.. (stored.Secrets ?? []).Select(s => new SecretBinding(s.Env, s.Secret, s.Placeholder))],
        };
    }
}

internal sealed record StoredSecretBinding(string Env, string Secret, string Placeholder);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(StoredNetwork))]
internal sealed partial class StoredNetworkJson : JsonSerializerContext;
