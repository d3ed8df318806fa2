using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Compat.E2b;

/// <summary>The per-sandbox access token the E2B SDK sends to envd (<c>X-Access-Token</c>): an HMAC of the sandbox
/// id under a secret kept in the data directory, so nothing per sandbox is stored and a restart changes nothing.</summary>
public sealed class E2bTokens
{
    private readonly byte[] _secret;

    public E2bTokens(IOptions<CordonOptions> options)
    {
        var file = Path.Combine(options.Value.DataDir, "e2b-token.key");
        if (!File.Exists(file))
        {
            var fresh = RandomNumberGenerator.GetBytes(32);
            using (var stream = new FileStream(file + ".tmp", new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
            {
                stream.Write(fresh);
            }

            File.Move(file + ".tmp", file, overwrite: false);
        }

        _secret = File.ReadAllBytes(file);
    }

    public string For(string sandboxId) => Convert.ToHexStringLower(HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes("envd:" + sandboxId)));

    /// <summary>Checks a signed <c>/files</c> URL (the SDK's <c>uploadUrl</c>/<c>downloadUrl</c>):
    /// <c>v1_</c> + unpadded base64 of SHA-256 over <c>path:operation:user:token[:expiration]</c>.</summary>
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

    /// <summary>Compares in constant time.</summary>
    public bool IsValid(string sandboxId, string? token)
        => token is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(For(sandboxId)), Encoding.UTF8.GetBytes(token));
}
