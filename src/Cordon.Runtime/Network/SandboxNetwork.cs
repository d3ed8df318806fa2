using System.Net;

namespace Cordon.Runtime.Network;

/// <summary>What a sandbox's traffic may reach, as the kernel enforces it (addresses and ports; names are the
/// server's to decide, through its resolver and its proxy). Precedence, as E2B defines it: an allow rule beats
/// a deny rule; a deny rule beats the default; the default reaches the public internet when
/// <see cref="Internet"/> is set, nothing otherwise. Reserved ranges (private, loopback, link-local, shared,
/// multicast — <see cref="ReservedRanges"/>) are reached only through an allow rule. The host itself and other
/// sandboxes are never reached.</summary>
public sealed record SandboxNetwork
{
    /// <summary>Loopback only: nothing leaves the sandbox (its interface stays, so a policy can open it later).</summary>
    public static SandboxNetwork None { get; } = new();

    /// <summary>The public internet, nothing reserved.</summary>
    public static SandboxNetwork PublicInternet { get; } = new() { Online = true, Internet = true };

    /// <summary>Traffic may leave the sandbox at all (through the rules below); false is <see cref="None"/>.</summary>
    public bool Online { get; init; }

    /// <summary>Addresses no rule names are reached (public ones only).</summary>
    public bool Internet { get; init; }

    public IReadOnlyList<AddressRule> Allow { get; init; } = [];

    public IReadOnlyList<AddressRule> Deny { get; init; } = [];

    /// <summary>Web traffic (TCP 80 and 443) goes to the server's proxy, which decides by the name asked for (TLS SNI,
    /// HTTP Host) and dials that name itself.</summary>
    public bool ThroughProxy { get; init; }

    /// <summary>Ranges a sandbox reaches only when a rule allows them.</summary>
    public static IReadOnlyList<IPNetwork> ReservedRanges { get; } =
    [
        IPNetwork.Parse("0.0.0.0/8"), IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("100.64.0.0/10"),
        IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("169.254.0.0/16"), IPNetwork.Parse("172.16.0.0/12"),
        IPNetwork.Parse("192.0.0.0/24"), IPNetwork.Parse("192.168.0.0/16"), IPNetwork.Parse("198.18.0.0/15"),
        IPNetwork.Parse("224.0.0.0/3"),
    ];

    /// <summary>Whether <paramref name="address"/> lies in a reserved range (the proxy checks what it dials too).</summary>
    public static bool IsReserved(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork
            ? IPAddress.IsLoopback(address) || address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6UniqueLocal || address.IsIPv6Multicast
            : ReservedRanges.Any(r => r.Contains(address));
    }
}

/// <summary>A range of addresses, optionally only some ports of one protocol (<c>tcp</c> or <c>udp</c>).</summary>
/// <param name="FirstPort">0 for every port.</param>
public sealed record AddressRule(IPNetwork Network, string? Protocol = null, int FirstPort = 0, int LastPort = 0)
{
    public bool AnyPort => FirstPort == 0;
}
