namespace Cordon.Server.Auth;

/// <summary>An API key as the service shows it: never its secret or hash.</summary>
/// <param name="Admin">An admin key sees and manages every tenant's sandboxes, images and keys.</param>
/// <param name="Quotas">What it may hold and how fast it may call (its own over the server's defaults); null for an
/// admin key, which has none.</param>
public sealed record ApiKey(string Id, string Name, bool Admin, DateTimeOffset CreatedAt, KeyQuotas? Quotas);
