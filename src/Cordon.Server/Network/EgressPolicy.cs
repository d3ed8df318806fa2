using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Cordon.Runtime.Network;

namespace Cordon.Server.Network;

/// <summary>What a sandbox's traffic may reach, in the policy language of docs/network.md (E2B's, with its
/// precedence): an allow rule beats a deny rule, a deny rule beats the default, and the default is the public
/// internet when <see cref="Internet"/> is set, nothing otherwise. Reserved ranges (private, loopback, link-local,
/// cloud metadata, shared) are reached only through an allow rule that names them; the host and other sandboxes
/// never. Rules name addresses (<c>198.51.100.7</c>, <c>10.0.0.0/8</c>) or domains (<c>pypi.org</c>,
/// <c>*.github.com</c>), each optionally with a port or range (<c>:443</c>, <c>:8000-8100</c>).</summary>
/// <remarks>
/// Address rules are the kernel's to enforce (<see cref="ToRuntime"/> turns them into nftables rules). Domain rules
/// decide web traffic: the server's proxy takes a sandbox's TCP 80 and 443 when its policy has any, reads the name
/// asked for (TLS SNI, HTTP Host), and dials that name itself, so a forged /etc/hosts entry or DNS answer cannot
/// send the connection elsewhere. The server's resolver answers only names the policy could reach.
/// </remarks>
public sealed record EgressPolicy
{
    /// <summary>The most rules a policy may hold (each is an nftables rule, checked per packet).</summary>
    public const int MaxRules = 256;

    public static EgressPolicy None { get; } = new();

    public static EgressPolicy OpenInternet { get; } = new() { Internet = true };

    public bool Internet { get; init; }

    public IReadOnlyList<EgressRule> Allow { get; init; } = [];

    public IReadOnlyList<EgressRule> Deny { get; init; } = [];

    /// <summary>Headers set on HTTPS requests to matching hosts (values may name secrets); they grant no access.</summary>
    public IReadOnlyList<HeaderRule> Headers { get; init; } = [];

    /// <summary>The secrets the sandbox may use, each by the placeholder in its environment. They belong to the
    /// sandbox rather than to a policy: a new policy keeps them.</summary>
    public IReadOnlyList<SecretBinding> Secrets { get; init; } = [];

    /// <summary>Anything may leave the sandbox at all.</summary>
    public bool Online => Internet || Allow.Count > 0;

    /// <summary>Some HTTPS requests are opened by the proxy, to set headers or put in secrets.</summary>
    public bool Intercepts => Headers.Count > 0 || Secrets.Count > 0;

    /// <summary>Web traffic goes through the server's proxy (a domain rule needs the name asked for; secrets and header
    /// rules need the requests).</summary>
    public bool NeedsProxy => Intercepts || Allow.Concat(Deny).Any(r => r.Domain is not null);

    /// <summary>Parses a policy from its wire form.</summary>
    /// <exception cref="FormatException">A rule is malformed (the message says which and why).</exception>
    public static EgressPolicy Parse(bool internet, IReadOnlyList<string>? allow, IReadOnlyList<string>? deny,
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>>? headers = null)
    {
        if ((allow?.Count ?? 0) + (deny?.Count ?? 0) + (headers?.Count ?? 0) > MaxRules)
        {
            throw new FormatException($"A network policy holds at most {MaxRules} rules.");
        }

        return new EgressPolicy
        {
            Internet = internet,
            Allow = [.. (allow ?? []).Select(EgressRule.Parse)],
            Deny = [.. (deny ?? []).Select(EgressRule.Parse)],
            Headers = [.. (headers ?? new Dictionary<string, IReadOnlyDictionary<string, string>>()).Select(h => HeaderRule.Parse(h.Key, h.Value))],
        };
    }

    /// <summary>The header rule for <paramref name="host"/>: an exact host beats the longest matching wildcard; rules
    /// are not merged.</summary>
    public HeaderRule? HeadersFor(string host)
        => Headers.Where(r => r.Host.MatchesName(host)).OrderBy(r => r.Host.Wildcard).ThenByDescending(r => r.Host.Domain!.Length).FirstOrDefault();

    /// <summary>The part the kernel enforces: address rules, and whether web traffic goes to the proxy.</summary>
    public SandboxNetwork ToRuntime() => new()
    {
        Online = Online,
        Internet = Internet,
        ThroughProxy = NeedsProxy,
        Allow = [.. Allow.Where(r => r.Network is not null).Select(r => r.ToAddressRule())],
        Deny = [.. Deny.Where(r => r.Network is not null).Select(r => r.ToAddressRule())],
    };

    /// <summary>Whether a connection to <paramref name="address"/>:<paramref name="port"/> is allowed by address, as
    /// the kernel decides it (the proxy decides the same for web traffic it took without a name).</summary>
    /// <returns>Null when allowed, else the reason (the rule that refused it).</returns>
    public string? RefusalForAddress(IPAddress address, int port)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (Allow.FirstOrDefault(r => r.Matches(address, port)) is not null)
        {
            return null;
        }

        if (Deny.FirstOrDefault(r => r.Matches(address, port)) is { } denied)
        {
            return $"denied by rule '{denied}'";
        }

        if (!Internet)
        {
            return "no rule allows it and the sandbox has no internet access";
        }

        return SandboxNetwork.IsReserved(address) ? $"{address} is in a reserved range; allow it explicitly to reach it" : null;
    }

    /// <summary>How a name is decided: by a domain rule (allowed or refused), or by no rule (then the address it
    /// resolves to decides).</summary>
    public NameDecision DecideName(string name, int port)
    {
        name = NormalizeName(name);
        if (Allow.FirstOrDefault(r => r.Matches(name, port)) is { } allowed)
        {
            return new NameDecision(true, $"allowed by rule '{allowed}'", ByRule: true);
        }

        if (Deny.FirstOrDefault(r => r.Matches(name, port)) is { } denied)
        {
            return new NameDecision(false, $"denied by rule '{denied}'", ByRule: true);
        }

        return Internet
            ? new NameDecision(true, "the internet is open", ByRule: false)
            : new NameDecision(false, "no rule allows it and the sandbox has no internet access", ByRule: false);
    }

    /// <summary>Whether the resolver answers a query for <paramref name="name"/>: a name the policy could reach on
    /// some port. Under deny-all nothing is answered, so DNS carries nothing out.</summary>
    public bool Resolves(string name)
    {
        name = NormalizeName(name);
        if (!Online)
        {
            return false;
        }

        if (Allow.Any(r => r.Domain is not null && r.MatchesName(name)))
        {
            return true;
        }

        return Internet && !Deny.Any(r => r.Domain is not null && r.AnyPort && r.MatchesName(name));
    }

    public static string NormalizeName(string name) => name.TrimEnd('.').ToLowerInvariant();

    /// <summary>The wire form of the rules (as given, normalised).</summary>
    public IReadOnlyList<string> AllowText => [.. Allow.Select(r => r.ToString())];

    public IReadOnlyList<string> DenyText => [.. Deny.Select(r => r.ToString())];

    /// <summary>The wire form of the header rules, by host.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> HeadersText
        => Headers.ToDictionary(r => r.Host.ToString(), r => (IReadOnlyDictionary<string, string>)r.Set.ToDictionary(h => h.Name, h => h.Value, StringComparer.OrdinalIgnoreCase));
}

/// <summary>A secret a sandbox may use: the environment variable holding its placeholder, the secret's name, and the
/// placeholder itself (unguessable, so it never matches text the sandbox did not take from that variable).</summary>
public sealed record SecretBinding(string Env, string Secret, string Placeholder);

/// <summary>Headers set on every HTTPS request to a host (or a wildcard's subdomains). A value may name secrets:
/// <c>${secrets.NAME}</c>, or E2B's <c>${e2b.secrets.NAME}</c>.</summary>
public sealed partial record HeaderRule(EgressRule Host, IReadOnlyList<(string Name, string Value)> Set)
{
    public const int MaxHeaders = 32;

    /// <summary>The names of the secrets the values refer to.</summary>
    public IEnumerable<string> SecretNames => Set.SelectMany(h => Reference().Matches(h.Value).Select(m => m.Groups[1].Value.ToLowerInvariant()));

    /// <exception cref="FormatException">The host or a header is malformed.</exception>
    public static HeaderRule Parse(string host, IReadOnlyDictionary<string, string>? headers)
    {
        var rule = EgressRule.Parse(host);
        if (rule.Domain is null || !rule.AnyPort)
        {
            throw new FormatException($"Header rule '{host}': name a host (api.example.com) or its subdomains (*.example.com), without a port; headers are set on HTTPS requests only.");
        }

        if (headers is null || headers.Count is 0 or > MaxHeaders)
        {
            throw new FormatException($"Header rule '{host}' sets 1-{MaxHeaders} headers.");
        }

        foreach (var (name, value) in headers)
        {
            if (string.IsNullOrEmpty(name) || name.Length > 256 || !name.All(IsTokenChar))
            {
                throw new FormatException($"Header rule '{host}': '{name}' is not an HTTP header name.");
            }

            if (value is null || value.Length > 16 * 1024 || !IsHeaderValue(value))
            {
                throw new FormatException($"Header rule '{host}': the value of '{name}' must be printable ASCII on one line, at most 16 KiB.");
            }

            if (name.Equals("host", StringComparison.OrdinalIgnoreCase) || name.Equals("content-length", StringComparison.OrdinalIgnoreCase)
                || name.Equals("transfer-encoding", StringComparison.OrdinalIgnoreCase) || name.Equals("connection", StringComparison.OrdinalIgnoreCase))
            {
                throw new FormatException($"Header rule '{host}': '{name}' decides where a request goes or how it is framed; it cannot be set.");
            }
        }

        return new HeaderRule(rule, [.. headers.Select(h => (h.Key, h.Value))]);
    }

    /// <summary>The values with each secret reference replaced by <paramref name="valueOf"/>'s answer.</summary>
    /// <returns>Null, with the first name <paramref name="valueOf"/> had no value for.</returns>
    public (IReadOnlyList<(string Name, string Value)>? Headers, string? Missing) Resolve(Func<string, string?> valueOf)
    {
        var resolved = new List<(string, string)>();
        foreach (var (name, value) in Set)
        {
            string? missing = null;
            var filled = Reference().Replace(value, m => valueOf(m.Groups[1].Value.ToLowerInvariant()) ?? (missing ??= m.Groups[1].Value));
            if (missing is not null)
            {
                return (null, missing);
            }

            resolved.Add((name, filled));
        }

        return (resolved, null);
    }

    /// <summary>Printable ASCII and tabs: what may go into a header value unchanged.</summary>
    public static bool IsHeaderValue(string value) => value.All(c => c is '\t' or (>= ' ' and <= '~'));

    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal);

    [GeneratedRegex(@"\$\{(?:e2b\.)?secrets\.([^{}\s]+)\}")]
    private static partial Regex Reference();
}

/// <param name="Allowed">The connection may be made.</param>
/// <param name="Reason">Why, for the sandbox's events.</param>
/// <param name="ByRule">A domain rule decided (then the name is dialled); else the address decides.</param>
public readonly record struct NameDecision(bool Allowed, string Reason, bool ByRule);

/// <summary>One rule: an address range or a domain (<c>*.</c> for its subdomains), optionally with ports.</summary>
public sealed record EgressRule
{
    /// <summary>The longest domain name DNS allows.</summary>
    private const int MaxNameLength = 253;

    public IPNetwork? Network { get; init; }

    /// <summary>The domain, lower case, without the <c>*.</c> of a wildcard.</summary>
    public string? Domain { get; init; }

    /// <summary>The rule names the domain's subdomains (<c>*.example.com</c>), not the domain itself.</summary>
    public bool Wildcard { get; init; }

    /// <summary>0 for every port.</summary>
    public int FirstPort { get; init; }

    public int LastPort { get; init; }

    public bool AnyPort => FirstPort == 0;

    /// <exception cref="FormatException">The rule is malformed.</exception>
    public static EgressRule Parse(string text)
    {
        var rule = (text ?? "").Trim();
        if (rule.Length is 0 or > MaxNameLength + 12)
        {
            throw new FormatException($"Network rule '{text}' is empty or too long: name an address (198.51.100.7), a range (10.0.0.0/8) or a domain (pypi.org, *.github.com), optionally with :port or :first-last.");
        }

        var (target, first, last) = SplitPorts(rule, text!);
        if (IPNetwork.TryParse(target, out var network) || (IPAddress.TryParse(target, out var address) && TryHost(address, out network)))
        {
            if (network.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
            {
                throw new FormatException($"Network rule '{text}': sandboxes have IPv4 only; name an IPv4 address or range.");
            }

            return new EgressRule { Network = network, FirstPort = first, LastPort = last };
        }

        var wildcard = target.StartsWith("*.", StringComparison.Ordinal);
        var domain = EgressPolicy.NormalizeName(wildcard ? target[2..] : target);
        if (!IsDomain(domain))
        {
            throw new FormatException($"Network rule '{text}' is neither an IPv4 address, a CIDR range nor a domain name (letters, digits, '-' and '.'; a leading '*.' for subdomains).");
        }

        return new EgressRule { Domain = domain, Wildcard = wildcard, FirstPort = first, LastPort = last };
    }

    public bool Matches(IPAddress address, int port) => Network is { } network && network.Contains(address) && PortMatches(port);

    public bool Matches(string name, int port) => MatchesName(name) && PortMatches(port);

    public bool MatchesName(string name)
        => Domain is { } domain && (Wildcard
            ? name.Length > domain.Length + 1 && name.EndsWith("." + domain, StringComparison.Ordinal)
            : name == domain);

    public AddressRule ToAddressRule() => new(Network!.Value, null, FirstPort, LastPort);

    public override string ToString()
    {
        var target = Network is { } network ? (network.PrefixLength == 32 ? network.BaseAddress.ToString() : network.ToString())
            : (Wildcard ? "*." : "") + Domain;
        return AnyPort ? target : FirstPort == LastPort ? $"{target}:{FirstPort}" : $"{target}:{FirstPort}-{LastPort}";
    }

    private bool PortMatches(int port) => AnyPort || (port >= FirstPort && port <= LastPort);

    private static bool TryHost(IPAddress address, out IPNetwork network)
    {
        network = new IPNetwork(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
        return true;
    }

    private static (string Target, int First, int Last) SplitPorts(string rule, string text)
    {
        var colon = rule.LastIndexOf(':');
        if (colon < 0 || rule.IndexOf(':', StringComparison.Ordinal) != colon)
        {
            return (rule, 0, 0); // no port (or an IPv6 literal, refused later)
        }

        var ports = rule[(colon + 1)..].Split('-');
        if (ports.Length > 2 || !ports.All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 65535))
        {
            throw new FormatException($"Network rule '{text}': a port is 1-65535, a range first-last.");
        }

        var first = int.Parse(ports[0], CultureInfo.InvariantCulture);
        var last = int.Parse(ports[^1], CultureInfo.InvariantCulture);
        return first <= last
            ? (rule[..colon], first, last)
            : throw new FormatException($"Network rule '{text}': the range's first port is above its last.");
    }

    private static bool IsDomain(string name)
        => name.Length is > 0 and <= MaxNameLength
            && name.Split('.').All(label => label.Length is > 0 and <= 63 && label[0] != '-' && label[^1] != '-'
                && label.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_'));
}
