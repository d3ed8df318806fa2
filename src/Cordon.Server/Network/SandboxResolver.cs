using System.Net;
using ARSoft.Tools.Net;
using ARSoft.Tools.Net.Dns;
using Microsoft.Extensions.Logging;

namespace Cordon.Server.Network;

/// <summary>The DNS resolver every sandbox is given (its /etc/resolv.conf names the gateway): a DNS server
/// (ARSoft.Tools.Net's) on the gateway address that answers a sandbox's query only when its policy could reach the
/// name (<see cref="EgressPolicy.Resolves"/>), by asking the upstream resolvers; anything else gets REFUSED at once.
/// Under deny-all, then, no name leaves the host, so DNS cannot carry data out; under a domain allow-list only those
/// names do.</summary>
/// <remarks>The asker is known by its source address (a sandbox cannot send from another's: the host's rules drop
/// spoofed sources). Queries from an address that is no sandbox's are refused.</remarks>
public sealed partial class SandboxResolver : IAsyncDisposable
{
    private readonly DnsServer _server;
    private readonly Func<IPAddress, EgressPolicy?> _policyOf;
    private readonly UpstreamDns _upstream;
    private readonly ILogger _logger;

    private readonly Action<IPAddress, string> _refused;

    private SandboxResolver(DnsServer server, Func<IPAddress, EgressPolicy?> policyOf, Action<IPAddress, string> refused, UpstreamDns upstream, ILogger logger)
    {
        _server = server;
        _policyOf = policyOf;
        _refused = refused;
        _upstream = upstream;
        _logger = logger;
        _server.QueryReceived += OnQueryAsync;
        _server.ExceptionThrown += OnException;
    }

    /// <summary>Starts answering on <paramref name="address"/>, port 53 (UDP and TCP).</summary>
    /// <param name="refused">Told of each lookup a sandbox's policy refused (its address, what and why).</param>
    public static SandboxResolver Start(IPAddress address, Func<IPAddress, EgressPolicy?> policyOf, Action<IPAddress, string> refused, UpstreamDns upstream, ILogger logger)
    {
        var endpoint = new IPEndPoint(address, 53);
        var resolver = new SandboxResolver(new DnsServer(new UdpServerTransport(endpoint), new TcpServerTransport(endpoint)), policyOf, refused, upstream, logger);
        resolver._server.Start();
        return resolver;
    }

    private async Task OnQueryAsync(object sender, QueryReceivedEventArgs e)
    {
        if (e.Query is not DnsMessage query)
        {
            return;
        }

        var response = query.CreateResponseInstance();
        var asker = e.RemoteEndpoint.Address;
        var policy = _policyOf(asker);
        if (query.Questions.Count != 1 || policy is null || !policy.Resolves(query.Questions[0].Name.ToString()))
        {
            response.ReturnCode = ReturnCode.Refused;
            e.Response = response;
            if (query.Questions.Count == 1)
            {
                LogRefused(asker.ToString(), query.Questions[0].Name.ToString());
                if (policy is not null)
                {
                    _refused(asker, $"a DNS lookup of {EgressPolicy.NormalizeName(query.Questions[0].Name.ToString())} (no rule lets the sandbox reach that name)");
                }
            }

            return;
        }

        var question = query.Questions[0];
        var answer = await _upstream.AskAsync(question.Name, question.RecordType, question.RecordClass, CancellationToken.None);
        if (answer is null)
        {
            response.ReturnCode = ReturnCode.ServerFailure;
        }
        else
        {
            response.ReturnCode = answer.ReturnCode;
            response.AnswerRecords.AddRange(answer.AnswerRecords);
            response.AuthorityRecords.AddRange(answer.AuthorityRecords);
        }

        response.IsRecursionAllowed = true;
        e.Response = response;
    }

    private Task OnException(object sender, ExceptionEventArgs e)
    {
        LogFailed(e.Exception.Message);
        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _server.Stop();
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Debug, Message = "Refused a DNS query from {Sandbox} for {Name}")]
    private partial void LogRefused(string sandbox, string name);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Warning, Message = "The sandboxes' resolver failed: {Detail}")]
    private partial void LogFailed(string detail);
}

/// <summary>The resolvers the server asks for sandboxes (its setting, else the host's own /etc/resolv.conf), through
/// ARSoft.Tools.Net's client. The proxy asks the same ones when it dials a name, so a sandbox and its proxy see the
/// same answers.</summary>
public sealed class UpstreamDns(IReadOnlyList<IPAddress> servers)
{
    private readonly DnsClient _client = new(servers, 5000);

    public IReadOnlyList<IPAddress> Servers => servers;

    /// <summary>The resolvers named in a resolv.conf file (the host's by default).</summary>
    public static IReadOnlyList<IPAddress> FromResolvConf(string path = "/etc/resolv.conf")
    {
        try
        {
            return [.. File.ReadLines(path)
                .Select(l => l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f.Length >= 2 && f[0] == "nameserver" && IPAddress.TryParse(f[1], out _))
                .Select(f => IPAddress.Parse(f[1]))];
        }
        catch (IOException)
        {
            return [];
        }
    }

    /// <summary>The upstream's answer, or null when none answered.</summary>
    public async Task<DnsMessage?> AskAsync(DomainName name, RecordType type, RecordClass recordClass, CancellationToken cancellationToken)
    {
        try
        {
            return await _client.ResolveAsync(name, type, recordClass, null, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or OperationCanceledException or TimeoutException)
        {
            return null;
        }
    }

    /// <summary>The IPv4 addresses of a name (empty when it has none or the upstream did not answer).</summary>
    public async Task<IReadOnlyList<IPAddress>> AddressesOfAsync(string name, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(name, out var literal))
        {
            return [literal];
        }

        var answer = await AskAsync(DomainName.Parse(name), RecordType.A, RecordClass.INet, cancellationToken);
        return answer is null ? [] : [.. answer.AnswerRecords.OfType<ARecord>().Select(r => r.Address)];
    }
}
