namespace Cordon.Protocol.Api;

/// <summary>What a sandbox's traffic may reach (docs/network.md). Precedence as E2B's: an <see cref="AllowOut"/> rule
/// beats a <see cref="DenyOut"/> rule, which beats the default (<see cref="Internet"/>). The host itself and other
/// sandboxes are never reachable; private, link-local and cloud-metadata ranges only through an allow rule.</summary>
public sealed record NetworkPolicy
{
    /// <summary>Reach the public internet by default; false (with no allow rules) is loopback only. When a sandbox is
    /// created without a policy, the server's default (<c>Cordon:DefaultNetwork</c>, <c>internet</c> unless set).</summary>
    public bool? Internet { get; init; }

    /// <summary>Rules that allow: an IPv4 address (<c>198.51.100.7</c>), a range (<c>10.0.0.0/8</c>) or a domain
    /// (<c>pypi.org</c>, <c>*.github.com</c> for its subdomains), each with an optional <c>:port</c> or
    /// <c>:first-last</c>. A domain rule decides HTTP (by Host) and TLS (by SNI) on ports 80 and 443, and the
    /// server dials that name itself.</summary>
    public IReadOnlyList<string>? AllowOut { get; init; }

    /// <summary>Rules that refuse, in the same forms.</summary>
    public IReadOnlyList<string>? DenyOut { get; init; }

    /// <summary>Headers set on the sandbox's HTTPS requests to a host, by host (<c>api.example.com</c>, or
    /// <c>*.example.com</c> for its subdomains; an exact host beats the longest matching wildcard). A value may name
    /// a secret, <c>${secrets.NAME}</c> (E2B's <c>${e2b.secrets.NAME}</c> too), which the server's proxy fills in on
    /// the way out: the sandbox never holds it. A header rule grants no access by itself.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>>? Headers { get; init; }
}
