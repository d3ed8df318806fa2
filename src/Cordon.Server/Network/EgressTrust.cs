using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Network;

/// <summary>How a sandbox trusts the egress CA (<see cref="EgressCa"/>): every networked sandbox sees the CA at
/// <see cref="CaPath"/> and its image's trust bundle with the CA added at <see cref="BundlePath"/>, both read-only
/// files of the server's; a sandbox created with secrets or header rules also gets the variables that point the
/// usual clients there (OpenSSL, curl, git, Python's requests and pip, Node). The image's own trust store is left
/// as it is, so a package that updates it (update-ca-certificates) still works.</summary>
public sealed class EgressTrust
{
    public const string CaPath = "/etc/cordon/egress-ca.crt";
    public const string BundlePath = "/etc/cordon/ca-bundle.crt";

    /// <summary>A bundle larger than this in an image is not used (Debian's is ~200 KiB).</summary>
    private const long MaxBundleBytes = 4 << 20;

    /// <summary>Where images keep their bundle: Debian and Alpine, Fedora, others.</summary>
    private static readonly string[] Bundles = ["etc/ssl/certs/ca-certificates.crt", "etc/pki/tls/certs/ca-bundle.crt", "etc/ssl/cert.pem"];

    private readonly EgressCa _ca;
    private readonly string _directory;
    private readonly string _caFile;
    private readonly ConcurrentDictionary<string, string> _bundles = new(StringComparer.Ordinal);

    public EgressTrust(EgressCa ca, IOptions<CordonOptions> options)
    {
        _ca = ca;
        _directory = Path.Combine(options.Value.DataDir, "egress");
        Directory.CreateDirectory(_directory);
        File.SetUnixFileMode(_directory, Runtime.Modes.TraverseOnly);
        _caFile = Path.Combine(_directory, "ca.crt");
        Write(_caFile, ca.CertificatePem);
    }

    /// <summary>Variables that make the usual clients trust <see cref="BundlePath"/> (Node: <see cref="CaPath"/> besides its own).</summary>
    public static IReadOnlyDictionary<string, string> Environment { get; } = new Dictionary<string, string>
    {
        ["SSL_CERT_FILE"] = BundlePath,
        ["CURL_CA_BUNDLE"] = BundlePath,
        ["GIT_SSL_CAINFO"] = BundlePath,
        ["REQUESTS_CA_BUNDLE"] = BundlePath,
        ["PIP_CERT"] = BundlePath,
        ["NODE_EXTRA_CA_CERTS"] = CaPath,
    };

    /// <summary>The files a sandbox of an image with these layers (bottom first) sees.</summary>
    public IReadOnlyList<(string Source, string Destination)> FilesFor(IReadOnlyList<string> layers)
    {
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', layers))))[..24];
        var bundle = _bundles.GetOrAdd(key, _ =>
        {
            var path = Path.Combine(_directory, $"bundle-{key}.crt");
            var own = ImageBundle(layers);
            Write(path, own is null ? _ca.CertificatePem : own.TrimEnd() + "\n" + _ca.CertificatePem);
            return path;
        });
        return [(_caFile, CaPath), (bundle, BundlePath)];
    }

    /// <summary>The image's trust bundle, or null (read without following anything in the image).</summary>
    private static string? ImageBundle(IReadOnlyList<string> layers)
        => Bundles.Select(b => Runtime.Images.ImageFiles.ReadText(layers, b, MaxBundleBytes)).FirstOrDefault(t => t is not null);

    private static void Write(string path, string content)
    {
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp"; // two creates may write the same bundle at once
        File.WriteAllText(temporary, content);
        File.SetUnixFileMode(temporary, Runtime.Modes.WorldReadable);
        File.Move(temporary, path, overwrite: true);
    }
}
