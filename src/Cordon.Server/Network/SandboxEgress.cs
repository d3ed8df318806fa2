using System.Net;
using Cordon.Runtime;
using Cordon.Runtime.Oci;
using Cordon.Server.Sandboxes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Network;

/// <summary>The server's part of sandbox networks: the resolver and the proxy on this server's service address,
/// answering for its own sandboxes by the policies the service keeps. Started once the runtime has made the host's
/// part (and only then); a host without it gives sandboxes loopback only.</summary>
public sealed partial class SandboxEgress(SandboxService sandboxes, ISandboxRuntime runtime, EgressCa ca, IOptions<OciRuntimeOptions> runtimeOptions,
    IOptions<CordonOptions> options, ILogger<SandboxEgress> logger) : IAsyncDisposable
{
    private SandboxResolver? _resolver;
    private EgressProxy? _proxy;

    /// <summary>The upstream resolvers in use (empty until started).</summary>
    public IReadOnlyList<IPAddress> Upstream { get; private set; } = [];

    /// <returns>Null when serving, else why not (for the log: sandboxes then resolve nothing and name rules refuse).</returns>
    public string? Start()
    {
        if (runtime.ServiceAddress is not { } address)
        {
            return null;
        }

        var configured = options.Value.UpstreamDns;
        if (configured.FirstOrDefault(a => !IPAddress.TryParse(a, out _)) is { } bad)
        {
            return $"Cordon:UpstreamDns names '{bad}', which is not an IP address; sandboxes resolve no names until it is fixed.";
        }

        Upstream = configured.Length > 0
            ? [.. configured.Select(IPAddress.Parse)]
            : UpstreamDns.FromResolvConf();
        if (Upstream.Count == 0)
        {
            return "no upstream DNS resolver: /etc/resolv.conf names none and Cordon:UpstreamDns is empty; sandboxes resolve no names.";
        }

        var roots = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        if (!string.IsNullOrEmpty(options.Value.UpstreamCaFile))
        {
            try
            {
                roots.ImportFromPemFile(options.Value.UpstreamCaFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
            {
                return $"Cordon:UpstreamCaFile could not be read ({ex.Message}); sandboxes' resolver and proxy are not started until it is fixed.";
            }
        }

        var upstream = new UpstreamDns(Upstream);
        try
        {
            _resolver = SandboxResolver.Start(address, sandboxes.EgressPolicyAt, sandboxes.RecordRefusal, upstream, logger);
            _proxy = EgressProxy.Start(new IPEndPoint(address, runtimeOptions.Value.NetworkProxyPort), sandboxes.EgressPolicyAt, sandboxes.RecordRefusal,
                upstream, IPNetwork.Parse(runtimeOptions.Value.NetworkSubnet), sandboxes.InterceptionAt, ca, roots);
        }
        catch (System.Net.Sockets.SocketException ex)
        {
            return $"the sandboxes' resolver or proxy could not listen on {address}: {ex.Message}";
        }

        sandboxes.NetworkChanged += _proxy.Reevaluate;
        LogServing(address.ToString(), string.Join(", ", Upstream));
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_proxy is not null)
        {
            sandboxes.NetworkChanged -= _proxy.Reevaluate;
            await _proxy.DisposeAsync();
        }

        if (_resolver is not null)
        {
            await _resolver.DisposeAsync();
        }
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Sandboxes' resolver and proxy on {Address}; upstream DNS {Upstream}")]
    private partial void LogServing(string address, string upstream);
}
