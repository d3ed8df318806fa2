using System.Security.Cryptography;
using System.Text;
using Cordon.Server.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Auth;

/// <summary>Issues and checks API keys. Only a SHA-256 of each key is stored; the secret is shown once.</summary>
public sealed partial class ApiKeyService(StateStore store, Secrets.SecretService secrets, IOptions<CordonOptions> options, ILogger<ApiKeyService> logger)
{
    /// <summary>The environment variable whose value, when set, is the admin key.</summary>
    public const string EnvironmentVariable = "CORDON_API_KEY";
    private const string EnvironmentKeyId = "admin-env";

    private volatile Dictionary<string, ApiKeyRecord> _byHash = [];
    private volatile Dictionary<string, ApiKeyRecord> _byId = [];

    /// <summary>Installs the admin key: from <see cref="EnvironmentVariable"/> when set (replacing an earlier one
    /// from there), otherwise generated on the very first start.</summary>
    /// <returns>A newly generated secret to show the operator once, or null.</returns>
    public string? Initialize()
    {
        string? generated = null;
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            store.SaveApiKey(new ApiKeyRecord(EnvironmentKeyId, "admin (from CORDON_API_KEY)", Hash(fromEnvironment.Trim()), true, DateTimeOffset.UtcNow));
        }
        else if (!store.LoadApiKeys().Any(k => k.Admin))
        {
            generated = NewSecret();
            store.SaveApiKey(new ApiKeyRecord("admin", "admin (generated)", Hash(generated), true, DateTimeOffset.UtcNow));
            LogGenerated();
        }

        Reload();
        return generated;
    }

    public CallerIdentity? Authenticate(string? secret)
    {
        if (string.IsNullOrEmpty(secret))
        {
            return null;
        }

        return _byHash.TryGetValue(Hash(secret.Trim()), out var key) ? new CallerIdentity(key.Id, key.Admin) : null;
    }

    /// <summary>Creates a key: a tenant key sees only the sandboxes it created, within its quotas.</summary>
    /// <param name="quotas">The key's own quotas over the server's defaults (tenant keys only).</param>
    public (ApiKey Key, string Secret) Create(string name, bool admin, KeyQuotas? quotas = null)
    {
        var secret = NewSecret();
        var record = new ApiKeyRecord("key_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)), name, Hash(secret), admin, DateTimeOffset.UtcNow, admin ? null : quotas);
        store.SaveApiKey(record);
        Reload();
        return (View(record), secret);
    }

    public IReadOnlyList<ApiKey> List() => [.. store.LoadApiKeys().Select(View)];

    /// <summary>Replaces a tenant key's own quotas (null fields: the server's defaults); null when there is no
    /// such key.</summary>
    public ApiKey? SetQuotas(string id, KeyQuotas quotas)
    {
        if (_byId.GetValueOrDefault(id) is not { } record)
        {
            return null;
        }

        var changed = record with { Quotas = record.Admin ? null : quotas };
        store.SaveApiKey(changed);
        Reload();
        return View(changed);
    }

    /// <summary>A key's effective quotas; null for admin keys and the server itself, which have none.</summary>
    public KeyQuotas? QuotasOf(string keyId)
    {
        var record = _byId.GetValueOrDefault(keyId);
        if (keyId == CallerIdentity.System.KeyId || record is { Admin: true })
        {
            return null;
        }

        // A deleted key's sandboxes live on under the defaults until they end.
        return (record?.Quotas ?? new KeyQuotas()).Over(options.Value.Quotas.Over(KeyQuotas.Defaults));
    }

    private ApiKey View(ApiKeyRecord record) => new(record.Id, record.Name, record.Admin, record.CreatedAt, QuotasOf(record.Id));

    public bool Delete(string id)
    {
        if (!store.LoadApiKeys().Any(k => k.Id == id))
        {
            return false;
        }

        store.DeleteApiKey(id);
        secrets.DeleteAllOf(id); // a key's secrets go with it: nothing could use them again
        Reload();
        return true;
    }

    /// <summary>The key exists (it was not deleted); the server itself counts as one.</summary>
    public bool Exists(string id) => _byId.ContainsKey(id) || id == CallerIdentity.System.KeyId;

    private void Reload()
    {
        var keys = store.LoadApiKeys();
        _byHash = keys.ToDictionary(k => k.Hash, StringComparer.Ordinal);
        _byId = keys.ToDictionary(k => k.Id, StringComparer.Ordinal);
    }

    private static string NewSecret()
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        return "cdn_" + RandomNumberGenerator.GetString(alphabet, 40);
    }

    private static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Generated the admin API key (shown once on the console, stored hashed)")]
    private partial void LogGenerated();
}
