namespace Cordon.Server.State;

/// <summary>A stored API key: only the SHA-256 of the secret is kept.</summary>
/// <param name="Quotas">The key's own quotas over the server's defaults; null for none.</param>
public sealed record ApiKeyRecord(string Id, string Name, string Hash, bool Admin, DateTimeOffset CreatedAt, Auth.KeyQuotas? Quotas = null);
