using System.Security.Cryptography;
using System.Text;
using Cordon.Server.State;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Auth;

/// <summary>Per-sandbox access tokens for data-plane traffic that carries no API key (E2B's envd
/// <c>X-Access-Token</c>, signed file URLs): an HMAC of the sandbox id under a server secret kept in the state
/// store, so nothing per sandbox is stored and a restart changes nothing.</summary>
public sealed class SandboxTokens
{
    private const string SecretName = "sandbox-token";
    private readonly byte[] _secret;

    public SandboxTokens(StateStore store, IOptions<CordonOptions> options)
    {
        // Servers before the secret moved into the store kept it in a file of the data directory: take it over, so
        // tokens of sandboxes that outlived the upgrade stay valid.
        var legacy = Path.Combine(options.Value.DataDir, "e2b-token.key");
        var existing = File.Exists(legacy) ? File.ReadAllBytes(legacy) : null;
        _secret = store.LoadOrCreateSecret(SecretName, () => existing ?? RandomNumberGenerator.GetBytes(32));
        if (existing is not null)
        {
            File.Delete(legacy);
        }
    }

    public string For(string sandboxId) => Convert.ToHexStringLower(HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes("envd:" + sandboxId)));

    /// <summary>Compares in constant time.</summary>
    public bool IsValid(string sandboxId, string? token)
        => token is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(For(sandboxId)), Encoding.UTF8.GetBytes(token));

    /// <summary>Checks a signed file URL (E2B's <c>uploadUrl</c>/<c>downloadUrl</c>): <c>v1_</c> + unpadded base64 of
    /// SHA-256 over <c>path:operation:user:token[:expiration]</c>.</summary>
    public bool IsValidSignature(string sandboxId, string path, string operation, string user, string signature, string? expiration)
    {
        if (expiration is not null && (!long.TryParse(expiration, out var until) || DateTimeOffset.UtcNow.ToUnixTimeSeconds() > until))
        {
            return false;
        }

        var raw = $"{path}:{operation}:{user}:{For(sandboxId)}" + (expiration is null ? "" : ":" + expiration);
        var expected = "v1_" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(raw))).TrimEnd('=');
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(signature));
    }
}
