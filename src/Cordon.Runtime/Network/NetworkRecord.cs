using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Cordon.Runtime.Network;

/// <summary>A sandbox's slot and policy, kept in its directory (<c>network.json</c>) so a restarted server finds
/// its network again and applies the same policy.</summary>
internal sealed record NetworkRecord(int Slot, bool Online, bool Internet, bool ThroughProxy, IReadOnlyList<string> Allow, IReadOnlyList<string> Deny)
{
    public const string FileName = "network.json";

    public static NetworkRecord Of(int slot, SandboxNetwork policy)
        => new(slot, policy.Online, policy.Internet, policy.ThroughProxy, [.. policy.Allow.Select(Format)], [.. policy.Deny.Select(Format)]);

    [JsonIgnore]
    public SandboxNetwork Policy => new()
    {
        Online = Online,
        Internet = Internet,
        ThroughProxy = ThroughProxy,
        Allow = [.. Allow.Select(Parse)],
        Deny = [.. Deny.Select(Parse)],
    };

    public void Save(string directory)
        => File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, NetworkRecordJson.Default.NetworkRecord));

    /// <summary>The record in a sandbox directory, or null when it has none (or it cannot be read).</summary>
    public static NetworkRecord? Load(string directory)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(Path.Combine(directory, FileName)), NetworkRecordJson.Default.NetworkRecord);
        }
        catch (Exception ex) when (ex is IOException or JsonException or FormatException)
        {
            return null;
        }
    }

    /// <summary><c>network[/protocol/first-last]</c>.</summary>
    private static string Format(AddressRule rule)
        => rule.AnyPort ? rule.Network.ToString() : $"{rule.Network}/{rule.Protocol ?? "any"}/{rule.FirstPort}-{rule.LastPort}";

    private static AddressRule Parse(string text)
    {
        var parts = text.Split('/');
        var network = IPNetwork.Parse(parts[0] + "/" + parts[1]);
        if (parts.Length == 2)
        {
            return new AddressRule(network);
        }

        var ports = parts[3].Split('-');
        return new AddressRule(network, parts[2] == "any" ? null : parts[2], int.Parse(ports[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(ports[1], System.Globalization.CultureInfo.InvariantCulture));
    }
}

[JsonSerializable(typeof(NetworkRecord))]
internal sealed partial class NetworkRecordJson : JsonSerializerContext;
