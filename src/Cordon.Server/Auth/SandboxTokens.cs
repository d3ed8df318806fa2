using System.Security.Cryptography;
using System.Text;
using Cordon.Server.State;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Auth;

/// <summary>Per-sandbox access tokens for data-plane traffic that carries no API key: E2B's envd token
/// (<c>X-Access-Token</c>, and the signed file URLs made from it) and its traffic token
/// (<c>E2B-Traffic-Access-Token</c>, for the code interpreter's contexts and the web ports of a sandbox whose
/// traffic is not public). Each is an HMAC of the sandbox id and the id of the key that created it, under a server
/// secret kept in the state store: nothing per sandbox is stored, a restart changes nothing, and every token of a
/// sandbox stops working when its creator's key is deleted.</summary>
public sealed class SandboxTokens
{
    private const string SecretName = "sandbox-token";
    private readonly byte[] _secret;
    private readonly ApiKeyService _keys;

    public SandboxTokens(StateStore store, ApiKeyService keys, IOptions<CordonOptions> options)
    {
        _keys = keys;

        // Servers before the secret moved into the store kept it in a file of the data directory: take it over.
        var legacy = Path.Combine(options.Value.DataDir, "e2b-token.key");
        var existing = File.Exists(legacy) ? File.ReadAllBytes(legacy) : null;
        _secret = store.LoadOrCreateSecret(SecretName, () => existing ?? RandomNumberGenerator.GetBytes(32));
        if (existing is not null)
        {
            File.Delete(legacy);
        }
    }

    /// <summary>The envd token: full control of the sandbox's processes and files.</summary>
    public string Envd(string sandboxId, string owner) => Make("envd", sandboxId, owner);

    /// <summary>The traffic token: the sandbox's web ports and code contexts, nothing of envd.</summary>
    public string Traffic(string sandboxId, string owner) => Make("traffic", sandboxId, owner);

    /// <summary>Compares in constant time; false once the owner's key is gone.</summary>
    public bool IsValidEnvd(string sandboxId, string owner, string? token) => Matches(Envd(sandboxId, owner), owner, token);

    /// <summary>The traffic token, or the envd token (which can do more).</summary>
    public bool IsValidTraffic(string sandboxId, string owner, string? token)
        => Matches(Traffic(sandboxId, owner), owner, token) || IsValidEnvd(sandboxId, owner, token);

    /// <summary>Checks a signed file URL (E2B's <c>uploadUrl</c>/<c>downloadUrl</c>): <c>v1_</c> + unpadded base64 of
    /// SHA-256 over <c>path:operation:user:token[:expiration]</c>. One without an expiration lasts as long as the
    /// envd token it was made from: while the sandbox lives and its creator's key exists.</summary>
    public bool IsValidSignature(string sandboxId, string owner, string path, string operation, string user, string signature, string? expiration)
    {
        if (expiration is not null && (!long.TryParse(expiration, out var until) || DateTimeOffset.UtcNow.ToUnixTimeSeconds() > until))
        {
            return false;
        }

        var raw = $"{path}:{operation}:{user}:{Envd(sandboxId, owner)}" + (expiration is null ? "" : ":" + expiration);
        var expected = "v1_" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(raw))).TrimEnd('=');
        return Matches(expected, owner, signature);
    }

    /// <summary>The signature of an upload link for a build's files (E2B's template file uploads): valid for that
    /// hash, that key and until <paramref name="expires"/> (Unix seconds).</summary>
    public string Upload(string hash, string owner, long expires) => Make("upload", $"{hash}\n{expires}", owner);

    /// <summary>Checks an upload link's signature; false once expired or once its key is gone.</summary>
    public bool IsValidUpload(string hash, string owner, long expires, string? signature)
        => DateTimeOffset.UtcNow.ToUnixTimeSeconds() <= expires && Matches(Upload(hash, owner, expires), owner, signature);

    private bool Matches(string expected, string owner, string? token)
        => token is not null
           && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(token))
           && _keys.Exists(owner);

    private string Make(string purpose, string sandboxId, string owner)
        => Convert.ToHexStringLower(HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes($"{purpose}\n{sandboxId}\n{owner}")));
}
