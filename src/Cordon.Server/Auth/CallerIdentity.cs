namespace Cordon.Server.Auth;

/// <summary>Who is calling: the id of the API key used, and whether it may see every tenant's sandboxes.</summary>
public sealed record CallerIdentity(string KeyId, bool Admin)
{
    /// <summary>The server itself (expiry, reconciliation).</summary>
    public static readonly CallerIdentity System = new("system", true);

    public bool CanSee(string owner) => Admin || owner == KeyId;
}
