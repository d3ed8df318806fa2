namespace Cordon.Server.State;

/// <summary>A stored API key: only the SHA-256 of the secret is kept.</summary>
public sealed record ApiKeyRecord(string Id, string Name, string Hash, bool Admin, DateTimeOffset CreatedAt);
