using System.Text.Json;
using System.Text.Json.Serialization;
using Cordon.Server.Network;

namespace Cordon.Server.State;

/// <summary>A sandbox's network policy as its row keeps it: <c>{"internet":…,"allow":[…],"deny":[…]}</c> in the
/// policy language's own words.</summary>
internal sealed record StoredNetwork(bool Internet, string[]? Allow, string[]? Deny)
{
    public static string Of(EgressPolicy policy)
        => JsonSerializer.Serialize(new StoredNetwork(policy.Internet, [.. policy.AllowText], [.. policy.DenyText]), StoredNetworkJson.Default.StoredNetwork);

    /// <summary>The policy of a row; none for rows from before networks (<c>{}</c>).</summary>
    public static EgressPolicy Parse(string json)
    {
        var stored = JsonSerializer.Deserialize(json, StoredNetworkJson.Default.StoredNetwork);
        return stored is null ? EgressPolicy.None : EgressPolicy.Parse(stored.Internet, stored.Allow, stored.Deny);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(StoredNetwork))]
internal sealed partial class StoredNetworkJson : JsonSerializerContext;
