using System.Globalization;
using System.Net;
using System.Text;

namespace Cordon.Runtime.Network;

/// <summary>Cordon's nftables table (<c>inet cordon</c>), as scripts for <c>nft -f -</c>: the table itself, and each
/// sandbox's own chains. Only this table is ever written; the host's own rules are never touched.</summary>
/// <remarks>
/// Each sandbox has a host-side veth (<c>cdh{slot}</c>) and one address. Its packets to the host may reach the
/// server's resolver and proxy on the gateway address and nothing else of the host. Its forwarded packets go one
/// of two ways. A sandbox on the default policy (the internet, no rules, no proxy: most of them) is a member of the
/// <c>internet</c> set, whose one shared chain refuses the reserved ranges and accepts the rest; its refusals are
/// counted per interface in the dynamic set <c>internet_refused</c> (by a rule of its own: were the set ever full,
/// its update would fail and end that rule, and the refusal must not depend on it). Any other policy has chains of
/// its own: its
/// packets jump, through the <c>out</c> verdict map, into <c>out_{slot}</c>, whose last rule always ends them (accept
/// or refuse), and its web traffic may be sent to the proxy through <c>web</c> and <c>web_{slot}</c>. The map is
/// looked at before the <c>internet</c> set, so a slot given chains of its own may stay a member of the set: a
/// prepared slot (on the default policy) that a create gives another policy is not taken out of it, because
/// deleting a set element makes the commit wait for an RCU grace period (8–16 ms on the 2-core VM, against 0.2 ms
/// for the additions), which every create with network <c>none</c> paid. What no
/// chain accepts goes to <c>refuse</c> (a TCP reset or an ICMP "administratively prohibited", so a refused
/// connection fails at once instead of hanging). Nothing starts a connection into a sandbox, and no sandbox
/// reaches another. Rules are evaluated for every packet, not only a connection's first: a policy change cuts the
/// connections it forbids.
/// <para>Why a shared chain: the kernel validates every chain a commit can reach and <c>nft</c> reads every chain
/// before each change, so chains of their own for thousands of sandboxes made every sandbox's create, destroy and
/// reset slower (6.5 % of the machine at 2,000 live).</para>
/// </remarks>
internal static partial class NftRules
{
    public const string Table = "cordon";
    public const string InterfacePrefix = "cdh";

    /// <summary>Prepended to <see cref="Base"/> by the first server on the host: drops the table (whatever a crash
    /// left in it) in the same transaction that builds it again ("add" first, so the delete cannot fail).</summary>
    public const string Fresh = $"add table inet {Table}\ndelete table inet {Table}\n";

    /// <summary>Creates the table, or brings an existing one (a server restarted with live sandboxes) to this
    /// version of its base chains, in one transaction; sandboxes' own chains and map entries stay.</summary>
    /// <param name="dropOtherForwarding">Cordon turned IP forwarding on: forwarded traffic that involves no sandbox
    /// is dropped, so the host does not become a router it was not before.</param>
    public static string Base(IPAddress gateway, int proxyPort, IPNetwork subnet, bool dropOtherForwarding)
    {
        var reserved = string.Join(", ", SandboxNetwork.ReservedRanges.Select(r => r.ToString()));
        var script = new StringBuilder();
        script.Append(CultureInfo.InvariantCulture, $$"""
            add table inet {{Table}}
            add set inet {{Table}} reserved { type ipv4_addr; flags interval; }
            flush set inet {{Table}} reserved
            add element inet {{Table}} reserved { {{reserved}} }
            add set inet {{Table}} slots { type ifname . ipv4_addr; }
            add map inet {{Table}} out { type ifname : verdict; }
            add map inet {{Table}} web { type ifname : verdict; }
            add set inet {{Table}} internet { type ifname; }
            add set inet {{Table}} internet_refused { type ifname; flags dynamic; counter; size 65536; }
            add chain inet {{Table}} refuse
            flush chain inet {{Table}} refuse
            add rule inet {{Table}} refuse meta l4proto tcp reject with tcp reset
            add rule inet {{Table}} refuse reject with icmpx admin-prohibited
            add chain inet {{Table}} internet
            flush chain inet {{Table}} internet
            add rule inet {{Table}} internet ip daddr @reserved update @internet_refused { iifname }
            add rule inet {{Table}} internet ip daddr @reserved goto refuse
            add rule inet {{Table}} internet accept
            add chain inet {{Table}} prerouting { type nat hook prerouting priority dstnat; policy accept; }
            flush chain inet {{Table}} prerouting
            add rule inet {{Table}} prerouting iifname "{{InterfacePrefix}}*" iifname vmap @web
            add chain inet {{Table}} to_host
            flush chain inet {{Table}} to_host
            add rule inet {{Table}} to_host meta nfproto ipv6 drop
            add rule inet {{Table}} to_host iifname . ip saddr != @slots drop
            add rule inet {{Table}} to_host ct state established,related accept
            add set inet {{Table}} services { type ipv4_addr; }
            add rule inet {{Table}} to_host ip daddr @services udp dport 53 accept
            add rule inet {{Table}} to_host ip daddr @services tcp dport { 53, {{proxyPort}} } accept
            add rule inet {{Table}} to_host goto refuse
            add chain inet {{Table}} input { type filter hook input priority filter - 5; policy accept; }
            flush chain inet {{Table}} input
            add rule inet {{Table}} input iifname "{{InterfacePrefix}}*" jump to_host
            add chain inet {{Table}} from_sandbox
            flush chain inet {{Table}} from_sandbox
            add rule inet {{Table}} from_sandbox meta nfproto ipv6 drop
            add rule inet {{Table}} from_sandbox iifname . ip saddr != @slots drop
            add rule inet {{Table}} from_sandbox oifname "{{InterfacePrefix}}*" goto refuse
            add rule inet {{Table}} from_sandbox iifname vmap @out
            add rule inet {{Table}} from_sandbox iifname @internet goto internet
            add rule inet {{Table}} from_sandbox goto refuse
            add chain inet {{Table}} forward { type filter hook forward priority filter - 5; policy accept; }
            flush chain inet {{Table}} forward
            add rule inet {{Table}} forward iifname "{{InterfacePrefix}}*" jump from_sandbox
            add rule inet {{Table}} forward oifname "{{InterfacePrefix}}*" ct state established,related accept
            add rule inet {{Table}} forward oifname "{{InterfacePrefix}}*" drop

            """);
        if (dropOtherForwarding)
        {
            script.Append(CultureInfo.InvariantCulture, $"add rule inet {Table} forward drop\n");
        }

        script.Append(CultureInfo.InvariantCulture, $$"""
            add chain inet {{Table}} postrouting { type nat hook postrouting priority srcnat; policy accept; }
            flush chain inet {{Table}} postrouting
            add rule inet {{Table}} postrouting ip saddr {{subnet}} oifname != "{{InterfacePrefix}}*" masquerade

            """);
        return script.ToString();
    }

    /// <summary>Opens a server's service address (its resolver and proxy) to sandboxes.</summary>
    public static string AddService(IPAddress address) => $"add element inet {Table} services {{ {address} }}\n";

    /// <summary>Closes a server's service address, in a transaction that cannot fail when it is already gone.</summary>
    public static string RemoveService(IPAddress address)
        => $"add element inet {Table} services {{ {address} }}\ndelete element inet {Table} services {{ {address} }}\n";

    /// <summary>Registers a slot: its interface may send from its address only. Nothing leaves it until
    /// <see cref="Policy"/> gives it a way out.</summary>
    public static string AddSlot(int slot, IPAddress address)
        => $"add element inet {Table} slots {{ \"{Interface(slot)}\" . {address} }}\n";

    /// <summary>Removes everything a slot may have in the table, whichever policy it had (each removal is preceded by
    /// an add, so the transaction cannot fail on what is already gone).</summary>
    public static string RemoveSlot(int slot, IPAddress address)
        => AddSlot(slot, address) + $"delete element inet {Table} slots {{ \"{Interface(slot)}\" . {address} }}\n"
            + LeaveShared(slot) + DropOwnChains(slot);

    /// <summary>Whether a policy is the default one every sandbox on it shares a chain for.</summary>
    public static bool IsShared(SandboxNetwork policy)
        => policy is { Online: true, Internet: true, ThroughProxy: false, Allow.Count: 0, Deny.Count: 0 };

    /// <summary>Replaces a slot's policy in one transaction (a packet sees the old policy or the new one), whichever
    /// it had; its refusal counts start again from zero.</summary>
    public static string Policy(int slot, SandboxNetwork policy, IPAddress gateway, int proxyPort)
    {
        var script = new StringBuilder();
        if (IsShared(policy))
        {
            script.Append(DropOwnChains(slot)).Append(LeaveShared(slot));
            script.Append(CultureInfo.InvariantCulture, $"add element inet {Table} internet {{ \"{Interface(slot)}\" }}\n");
            return script.ToString();
        }

        // Left in the internet set, if it is (see the remarks): its own chain, looked at first, decides. Additions only,
        // for a slot without chains yet: no deletion, so no wait for the kernel's grace period.
        script.Append(CultureInfo.InvariantCulture, $$"""
            add chain inet {{Table}} out_{{slot}}
            flush chain inet {{Table}} out_{{slot}}
            add chain inet {{Table}} web_{{slot}}
            flush chain inet {{Table}} web_{{slot}}
            add element inet {{Table}} out { "{{Interface(slot)}}" : jump out_{{slot}} }
            add element inet {{Table}} web { "{{Interface(slot)}}" : goto web_{{slot}} }

            """);
        if (!policy.Online)
        {
            script.Append(CultureInfo.InvariantCulture, $"add rule inet {Table} out_{slot} counter goto refuse comment \"{Offline}\"\n");
            return script.ToString();
        }

        if (policy.ThroughProxy)
        {
            script.Append(CultureInfo.InvariantCulture, $"add rule inet {Table} web_{slot} tcp dport {{ 80, 443 }} dnat ip to {gateway}:{proxyPort}\n");
        }

        foreach (var rule in policy.Allow)
        {
            script.Append(CultureInfo.InvariantCulture, $"add rule inet {Table} out_{slot} {Match(rule)} accept\n");
        }

        foreach (var rule in policy.Deny)
        {
            script.Append(CultureInfo.InvariantCulture, $"add rule inet {Table} out_{slot} {Match(rule)} counter goto refuse comment \"denied by rule '{Text(rule)}'\"\n");
        }

        if (policy.Internet)
        {
            script.Append(CultureInfo.InvariantCulture, $"add rule inet {Table} out_{slot} ip daddr @reserved counter goto refuse comment \"{Reserved}\"\n");
            script.Append(CultureInfo.InvariantCulture, $"add rule inet {Table} out_{slot} accept\n");
        }
        else
        {
            script.Append(CultureInfo.InvariantCulture, $"add rule inet {Table} out_{slot} counter goto refuse comment \"{NoRule}\"\n");
        }

        return script.ToString();
    }

    /// <summary>Takes a slot out of the shared chain's set, with its refusal count.</summary>
    private static string LeaveShared(int slot)
    {
        var name = Interface(slot);
        return $$"""
            add element inet {{Table}} internet { "{{name}}" }
            delete element inet {{Table}} internet { "{{name}}" }
            add element inet {{Table}} internet_refused { "{{name}}" }
            delete element inet {{Table}} internet_refused { "{{name}}" }

            """;
    }

    /// <summary>Removes a slot's own chains and their map entries, made first if missing.</summary>
    private static string DropOwnChains(int slot)
    {
        var name = Interface(slot);
        return $$"""
            add chain inet {{Table}} out_{{slot}}
            add chain inet {{Table}} web_{{slot}}
            add element inet {{Table}} out { "{{name}}" : jump out_{{slot}} }
            add element inet {{Table}} web { "{{name}}" : goto web_{{slot}} }
            delete element inet {{Table}} out { "{{name}}" }
            delete element inet {{Table}} web { "{{name}}" }
            delete chain inet {{Table}} out_{{slot}}
            delete chain inet {{Table}} web_{{slot}}

            """;
    }

    /// <summary>Why the kernel refused, as the refusing rule of a slot's chain names it (its comment).</summary>
    public const string Offline = "the sandbox has no network access";

    public const string Reserved = "a reserved range (allow the address explicitly to reach it)";

    public const string NoRule = "no rule allows it and the sandbox has no internet access";

    /// <summary>Reads the refusal count of a slot on the shared chain (fails when it has none yet).</summary>
    public static IReadOnlyList<string> GetSharedRefusals(int slot)
        => ["get", "element", "inet", Table, "internet_refused", $"{{ \"{Interface(slot)}\" }}"];

    /// <summary>The packets the shared chain refused to a slot, from <see cref="GetSharedRefusals"/>' output (the
    /// set's text form: <c>elements = { "cdh7" counter packets 3 bytes 180 }</c>).</summary>
    public static IReadOnlyDictionary<string, long> SharedRefusals(string output)
        => SharedCounter().Match(output) is { Success: true } match
            ? new Dictionary<string, long>(StringComparer.Ordinal) { [Reserved] = long.Parse(match.Groups[1].ValueSpan, CultureInfo.InvariantCulture) }
            : new Dictionary<string, long>();

    [System.Text.RegularExpressions.GeneratedRegex(@"counter packets (\d+)")]
    private static partial System.Text.RegularExpressions.Regex SharedCounter();

    /// <summary>Lists a slot's policy chain, with its rules' counters (<c>nft -j</c>).</summary>
    public static IReadOnlyList<string> ListPolicy(int slot) => ["-j", "list", "chain", "inet", Table, $"out_{slot}"];

    /// <summary>The packets each refusing rule of a slot's chain refused so far, by the rule's comment, from
    /// <c>nft -j list chain</c>'s output.</summary>
    public static IReadOnlyDictionary<string, long> Refusals(string json)
    {
        var refused = new Dictionary<string, long>(StringComparer.Ordinal);
        using var document = System.Text.Json.JsonDocument.Parse(json);
        foreach (var item in document.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (!item.TryGetProperty("rule", out var rule) || !rule.TryGetProperty("comment", out var comment) || !rule.TryGetProperty("expr", out var expressions))
            {
                continue;
            }

            foreach (var expression in expressions.EnumerateArray())
            {
                if (expression.TryGetProperty("counter", out var counter) && counter.TryGetProperty("packets", out var packets))
                {
                    var key = comment.GetString() ?? "";
                    refused[key] = refused.GetValueOrDefault(key) + packets.GetInt64();
                }
            }
        }

        return refused;
    }

    private static string Text(AddressRule rule)
    {
        var target = rule.Network.PrefixLength == 32 ? rule.Network.BaseAddress.ToString() : rule.Network.ToString();
        return rule.AnyPort ? target : rule.FirstPort == rule.LastPort ? $"{target}:{rule.FirstPort}" : $"{target}:{rule.FirstPort}-{rule.LastPort}";
    }

    public static string Interface(int slot) => InterfacePrefix + slot.ToString(CultureInfo.InvariantCulture);

    private static string Match(AddressRule rule)
    {
        var match = $"ip daddr {rule.Network}";
        if (rule.AnyPort)
        {
            return match;
        }

        var ports = rule.FirstPort == rule.LastPort
            ? rule.FirstPort.ToString(CultureInfo.InvariantCulture)
            : $"{rule.FirstPort}-{rule.LastPort}";
        return rule.Protocol is { } protocol
            ? $"{match} {protocol} dport {ports}"
            : $"{match} meta l4proto {{ tcp, udp }} th dport {ports}";
    }
}
