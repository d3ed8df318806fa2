using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Cordon.Runtime.Network;

namespace Cordon.Server.Network;

/// <summary>The transparent proxy for a sandbox's web traffic when its policy has domain rules: the host's rules
/// send its TCP 80 and 443 here (DNAT to the gateway), the proxy reads the name the sandbox asked for (the TLS
/// ClientHello's SNI, the HTTP request's Host) without terminating anything, decides by the policy, and connects —
/// to that name, resolved by the server's own upstream, when a domain rule allowed it; to the original destination
/// when the address decides. So a forged /etc/hosts entry or DNS answer cannot steer an allowed name elsewhere.</summary>
/// <remarks>
/// A refused HTTP request gets a 403 that says which rule refused it; a refused TLS connection is reset. Each
/// connection is remembered while open, so a policy change closes those the new policy forbids. What a sandbox
/// can grow is bounded: the bytes read before a name is known (<see cref="MaxPeekBytes"/>, within
/// <see cref="PeekTimeout"/>) and its open connections (<see cref="MaxConnectionsPerSandbox"/>).
/// <para>HTTPS to a host that the sandbox's secrets or header rules name is the one exception to "without
/// terminating anything": the proxy opens it (TLS to the server, checked against the host's trust store and
/// <see cref="CordonOptions.UpstreamCaFile"/>; TLS to the sandbox with a certificate from <see cref="EgressCa"/>)
/// and lets <see cref="HttpRewriter"/> change the requests' headers.</para>
/// </remarks>
public sealed class EgressProxy : IAsyncDisposable
{
    public const int MaxPeekBytes = 16 * 1024;
    public const int MaxConnectionsPerSandbox = 512;
    public static readonly TimeSpan PeekTimeout = TimeSpan.FromSeconds(10);

    /// <summary><c>SO_ORIGINAL_DST</c> (linux/netfilter_ipv4.h): the destination before the DNAT.</summary>
    private const int OriginalDestination = 80;

    private readonly Socket _listener;
    private readonly Func<IPAddress, EgressPolicy?> _policyOf;
    private readonly Func<IPAddress, string, Interception?> _interceptionOf;
    private readonly EgressCa _ca;
    private readonly X509Certificate2Collection _extraRoots;
    private readonly Action<IPAddress, string> _refused;
    private readonly UpstreamDns _upstream;
    private readonly IPNetwork _sandboxes;
    private readonly HostAddresses _host = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<IPAddress, ConcurrentDictionary<Relay, byte>> _open = new();
    private readonly Task _accepting;

    /// <param name="refused">Told of each refused connection (the sandbox's address, what was refused and why).</param>
    private EgressProxy(Socket listener, Func<IPAddress, EgressPolicy?> policyOf, Action<IPAddress, string> refused, UpstreamDns upstream, IPNetwork sandboxes,
        Func<IPAddress, string, Interception?> interceptionOf, EgressCa ca, X509Certificate2Collection extraRoots)
    {
        _listener = listener;
        _policyOf = policyOf;
        _interceptionOf = interceptionOf;
        _ca = ca;
        _extraRoots = extraRoots;
        _refused = refused;
        _upstream = upstream;
        _sandboxes = sandboxes;
        _accepting = AcceptAsync();
    }

    /// <param name="interceptionOf">What to do to a sandbox's HTTPS requests to a host; null to pass them unopened.</param>
    /// <param name="extraRoots">Authorities trusted besides the host's when the proxy opens a connection.</param>
    public static EgressProxy Start(IPEndPoint endpoint, Func<IPAddress, EgressPolicy?> policyOf, Action<IPAddress, string> refused, UpstreamDns upstream, IPNetwork sandboxes,
        Func<IPAddress, string, Interception?> interceptionOf, EgressCa ca, X509Certificate2Collection extraRoots)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(endpoint);
        listener.Listen(1024);
        return new EgressProxy(listener, policyOf, refused, upstream, sandboxes, interceptionOf, ca, extraRoots);
    }

    /// <summary>Closes the sandbox's proxied connections that its new policy forbids.</summary>
    public void Reevaluate(IPAddress sandbox, EgressPolicy policy)
    {
        if (!_open.TryGetValue(sandbox, out var relays))
        {
            return;
        }

        foreach (var relay in relays.Keys)
        {
            if (Decide(policy, relay.Name, relay.Original).Refusal is not null)
            {
                relay.Cut();
            }
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stopping.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }

            _ = ServeGuardedAsync(client);
        }
    }

    /// <summary>Serves one connection; whatever goes wrong ends that connection with a reset, never the proxy.</summary>
    private async Task ServeGuardedAsync(Socket client)
    {
        try
        {
            await ServeAsync(client);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Reset(client);
        }
    }

    private async Task ServeAsync(Socket client)
    {
        using var accepted = client;
        var source = ((IPEndPoint)client.RemoteEndPoint!).Address.MapToIPv4();
        if (_policyOf(source) is not { } policy || !_sandboxes.Contains(source))
        {
            Reset(client);
            return;
        }

        var open = _open.GetOrAdd(source, _ => new ConcurrentDictionary<Relay, byte>());
        if (open.Count >= MaxConnectionsPerSandbox)
        {
            _refused(source, $"a connection: the sandbox has {MaxConnectionsPerSandbox} open through the proxy already");
            Reset(client);
            return;
        }

        if (OriginalDestinationOf(client) is not { } original)
        {
            Reset(client);
            return;
        }

        // The name asked for: the first bytes, up to a bound and a time limit.
        var peeked = new byte[MaxPeekBytes];
        var length = 0;
        string? name = null;
        var tls = false;
        using (var peek = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token))
        {
            peek.CancelAfter(PeekTimeout);
            try
            {
                while (length < peeked.Length)
                {
                    var read = await client.ReceiveAsync(peeked.AsMemory(length), SocketFlags.None, peek.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    length += read;
                    var found = NameReader.Read(peeked.AsSpan(0, length));
                    if (found.Complete)
                    {
                        (name, tls) = (found.Name, found.Tls);
                        break;
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
                // Nothing readable in time: the address decides what little was sent.
            }
        }

        var (refusal, dial) = Decide(policy, name, original);
        var target = name is null ? original.ToString() : $"{name}:{original.Port}";
        if (refusal is null && dial is not null)
        {
            var addresses = await _upstream.AddressesOfAsync(dial, _stopping.Token);
            var allowed = addresses.FirstOrDefault(a => ForbiddenResolution(policy, a, original.Port) is null);
            refusal = addresses.Count == 0 ? $"{dial} did not resolve"
                : allowed is null ? ForbiddenResolution(policy, addresses[0], original.Port)
                : null;
            original = allowed is null ? original : new IPEndPoint(allowed, original.Port);
        }

        if (refusal is not null)
        {
            _refused(source, $"{target} ({refusal})");
            if (!tls && name is not null)
            {
                await RefuseHttpAsync(client, target, refusal);
            }
            else
            {
                Reset(client);
            }

            return;
        }

        using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            using var connect = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            connect.CancelAfter(TimeSpan.FromSeconds(30));
            await upstream.ConnectAsync(original, connect.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            Reset(client);
            return;
        }

        var relay = new Relay(client, upstream, name, original);
        open[relay] = 0;
        try
        {
            var host = name is null ? null : EgressPolicy.NormalizeName(name);
            if (tls && original.Port == 443 && host is not null && !IPAddress.TryParse(host, out _) && _interceptionOf(source, host) is { } interception)
            {
                await InterceptAsync(source, relay, peeked.AsMemory(0, length), host, interception);
            }
            else
            {
                await upstream.SendAsync(peeked.AsMemory(0, length), SocketFlags.None, _stopping.Token);
                await relay.RunAsync(_stopping.Token);
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or IOException or ObjectDisposedException or AuthenticationException or InvalidDataException)
        {
            // Either side went away, or the policy cut it, or a side spoke TLS or HTTP wrongly.
            relay.Cut();
        }
        finally
        {
            open.TryRemove(relay, out _);
        }
    }

    /// <summary>Opens an HTTPS connection to change its requests' headers: TLS to the server first (a server whose
    /// certificate is not trusted is refused, as the sandbox would have refused it), then TLS to the sandbox with the
    /// CA's certificate for the host; requests go through <see cref="HttpRewriter"/>, answers back unchanged.</summary>
    private async Task InterceptAsync(IPAddress source, Relay relay, ReadOnlyMemory<byte> peeked, string host, Interception interception)
    {
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        handshake.CancelAfter(TimeSpan.FromSeconds(30));
        await using var server = new SslStream(new NetworkStream(relay.Upstream, ownsSocket: false), false, TrustsUpstream);
        try
        {
            await server.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = host,
                ApplicationProtocols = [SslApplicationProtocol.Http11],
            }, handshake.Token);
        }
        catch (AuthenticationException ex)
        {
            _refused(source, $"{host}:443 (the server's certificate is not trusted: {ex.Message})");
            relay.Cut();
            return;
        }

        await using var client = new SslStream(new Runtime.PrefixedStream(peeked, new NetworkStream(relay.Client, ownsSocket: false)), false);
        await client.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            ServerCertificateContext = _ca.For(host),
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        }, handshake.Token);

        var requests = new HttpRewriter(host, interception).ForwardAsync(client, server, _stopping.Token);
        var answers = server.CopyToAsync(client, 16 * 1024, _stopping.Token);
        var ended = await Task.WhenAny(requests, answers);
        if (ended == requests && requests.IsCompletedSuccessfully && requests.Result is { } refusal)
        {
            _refused(source, $"{host}:443 ({refusal})");
        }

        if (ended.IsCompletedSuccessfully)
        {
            // The server's last answer, or the proxy's refusal, reaches the sandbox before the close.
            await client.FlushAsync(_stopping.Token);
            await client.ShutdownAsync();
            relay.Close();
        }
        else
        {
            relay.Cut();
        }

        await Task.WhenAll(requests, answers).ContinueWith(_ => { }, TaskScheduler.Default); // both end once the sockets are shut
    }

    private bool TrustsUpstream(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null || _extraRoots.Count == 0)
        {
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_extraRoots);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return custom.Build(leaf);
    }

    /// <summary>The policy's verdict on a connection: refused (why), allowed to a name to dial, or allowed to the
    /// original address. The proxy connects from the host, so the host's own addresses and the sandboxes' are
    /// refused here whatever the policy says (the kernel refuses them on every other path).</summary>
    private (string? Refusal, string? Dial) Decide(EgressPolicy policy, string? name, IPEndPoint original)
    {
        if (name is not null && !IPAddress.TryParse(name, out _))
        {
            var decision = policy.DecideName(name, original.Port);
            if (decision.ByRule)
            {
                return decision.Allowed ? (null, EgressPolicy.NormalizeName(name)) : (decision.Reason, null);
            }
        }

        return (NeverReached(original.Address) ?? policy.RefusalForAddress(original.Address, original.Port), null);
    }

    private string? NeverReached(IPAddress address)
        => _sandboxes.Contains(address) || IPAddress.IsLoopback(address) || _host.Contains(address)
            ? $"{address} is the host or a sandbox, which a sandbox never reaches"
            : null;

    /// <summary>Why a name a domain rule allowed may not be dialled at the address it resolved to: never into a
    /// reserved range (the host, other sandboxes, private networks, cloud metadata) unless an address rule allows it.</summary>
    private string? ForbiddenResolution(EgressPolicy policy, IPAddress address, int port)
    {
        if (NeverReached(address) is not null)
        {
            return $"it resolves to {address}, which a sandbox never reaches";
        }

        return SandboxNetwork.IsReserved(address) && !policy.Allow.Any(r => r.Matches(address, port))
            ? $"it resolves to {address}, a reserved address; allow that address explicitly to reach it"
            : null;
    }

    private static IPEndPoint? OriginalDestinationOf(Socket client)
    {
        Span<byte> address = stackalloc byte[16];
        try
        {
            if (client.GetRawSocketOption((int)SocketOptionLevel.IP, OriginalDestination, address) < 8)
            {
                return null;
            }
        }
        catch (SocketException)
        {
            return null; // not DNATed: a direct connection to the proxy's port
        }

        var port = BinaryPrimitives.ReadUInt16BigEndian(address[2..4]);
        return new IPEndPoint(new IPAddress(address[4..8]), port);
    }

    private static async Task RefuseHttpAsync(Socket client, string target, string refusal)
    {
        var body = $"Cordon refused this connection to {target}: {refusal}. The sandbox's network policy decides what it may reach (see GET /v1/sandboxes/{{id}}/network).\n";
        var response = $"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\nX-Cordon-Refused: network-policy\r\n\r\n{body}";
        try
        {
            await client.SendAsync(Encoding.UTF8.GetBytes(response), SocketFlags.None);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
    }

    /// <summary>Closes with a reset, so the sandbox sees "connection reset" at once rather than a hang.</summary>
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed by its other side: nothing left to cut.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Dispose();
        await _accepting;
        foreach (var relays in _open.Values)
        {
            foreach (var relay in relays.Keys)
            {
                relay.Cut();
            }
        }

        _stopping.Dispose();
    }

    /// <summary>One proxied connection, copied both ways until either side ends it.</summary>
    private sealed class Relay(Socket client, Socket upstream, string? name, IPEndPoint original)
    {
        public Socket Client => client;

        public Socket Upstream => upstream;

        public string? Name => name;

        public IPEndPoint Original => original;

        public async Task RunAsync(CancellationToken cancellationToken)
        {
            await using var inner = new NetworkStream(client, ownsSocket: false);
            await using var outer = new NetworkStream(upstream, ownsSocket: false);
            var up = CopyAsync(inner, outer, upstream, cancellationToken);
            var down = CopyAsync(outer, inner, client, cancellationToken);
            await Task.WhenAll(up, down);
        }

        public void Cut()
        {
            Reset(client);
            Reset(upstream);
        }

        /// <summary>Ends both sides in order: what was sent arrives, then the close.</summary>
        public void Close()
        {
            foreach (var socket in (Socket[])[client, upstream])
            {
                try
                {
                    socket.Shutdown(SocketShutdown.Both);
                    socket.Close();
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    // Already closed by its other side.
                }
            }
        }

        private static async Task CopyAsync(Stream from, Stream to, Socket toSocket, CancellationToken cancellationToken)
        {
            try
            {
                await from.CopyToAsync(to, 64 * 1024, cancellationToken);
                toSocket.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
                Reset(toSocket);
            }
        }
    }

    /// <summary>The host's own addresses, read again at most every few seconds (interfaces come and go).</summary>
    private sealed class HostAddresses
    {
        private static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(5);
        private HashSet<IPAddress> _addresses = [];
        private long _readAt = -(long)MaxAge.TotalMilliseconds - 1; // read at first use

        public bool Contains(IPAddress address)
        {
            var now = Environment.TickCount64;
            if (now - Volatile.Read(ref _readAt) > (long)MaxAge.TotalMilliseconds)
            {
                try
                {
                    Volatile.Write(ref _addresses, [.. System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                        .SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(a => a.Address)]);
                    Volatile.Write(ref _readAt, now);
                }
                catch (Exception ex) when (ex is System.Net.NetworkInformation.NetworkInformationException or IOException or UnauthorizedAccessException)
                {
                    // An interface went away while they were read (sandboxes' come and go all the time): the
                    // addresses read last stand, and the next connection reads them again.
                }
            }

            return Volatile.Read(ref _addresses).Contains(address);
        }
    }
}
