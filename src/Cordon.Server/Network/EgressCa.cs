using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Cordon.Server.State;

namespace Cordon.Server.Network;

/// <summary>The server's own certificate authority for the HTTPS connections its egress proxy opens (those to hosts
/// a sandbox's secrets or header rules name, and no others). Made once and kept in the state store; sandboxes trust
/// it through the usual variables (<see cref="EgressTrust"/>). A certificate per host name is issued on first use
/// and kept (up to <see cref="MaxCached"/>).</summary>
public sealed class EgressCa
{
    public const int MaxCached = 1024;

    private readonly X509Certificate2 _ca;
    private readonly X509Certificate2Collection _chain;
    private readonly ConcurrentDictionary<string, SslStreamCertificateContext> _issued = new(StringComparer.Ordinal);

    public EgressCa(StateStore store)
    {
        var pem = Encoding.UTF8.GetString(store.LoadOrCreateSecret("egress-ca", () => Encoding.UTF8.GetBytes(CreatePem())));
        _ca = X509Certificate2.CreateFromPem(pem, pem);
        CertificatePem = _ca.ExportCertificatePem() + "\n";
        _chain = [X509CertificateLoader.LoadCertificate(_ca.RawData)];
    }

    /// <summary>The CA's certificate (never its key), as sandboxes trust it.</summary>
    public string CertificatePem { get; }

    /// <summary>A certificate for <paramref name="host"/>, signed by the CA, with the CA as its chain.</summary>
    public SslStreamCertificateContext For(string host)
    {
        if (_issued.TryGetValue(host, out var context))
        {
            return context;
        }

        if (_issued.Count >= MaxCached)
        {
            _issued.Clear();
        }

        return _issued.GetOrAdd(host, Issue);
    }

    private SslStreamCertificateContext Issue(string host)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName("CN=" + host.Replace(",", "", StringComparison.Ordinal)), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(host);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        var now = DateTimeOffset.UtcNow;
        var notAfter = now.AddDays(90) < _ca.NotAfter ? now.AddDays(90) : new DateTimeOffset(_ca.NotAfter);
        using var issued = request.Create(_ca, now.AddHours(-1), notAfter, serial);
        return SslStreamCertificateContext.Create(issued.CopyWithPrivateKey(key), _chain, offline: true);
    }

    private static string CreatePem()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Cordon egress CA, O=Cordon", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(10));
        return certificate.ExportCertificatePem() + "\n" + key.ExportPkcs8PrivateKeyPem() + "\n";
    }
}
