namespace Cordon.Server.Network;

/// <summary>What the egress proxy does to a sandbox's HTTPS requests to one host it opens: headers to set (a header
/// rule's, secrets filled in) and placeholders to replace by secrets' values. <see cref="Refusal"/> set: every
/// request is refused with it instead (a rule names a secret that is gone or may not go to that host).</summary>
public sealed record Interception(
    IReadOnlyList<(string Name, string Value)> SetHeaders,
    IReadOnlyList<(string Placeholder, string Value)> Substitutions,
    string? Refusal = null);
