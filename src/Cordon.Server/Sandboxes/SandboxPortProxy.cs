using System.Net;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Cordon.Server.Sandboxes;

/// <summary>Forwards HTTP (WebSockets and other upgrades included) to a port inside a sandbox. The forwarding is
/// YARP's; the connection underneath is a tunnel through the sandbox's agent, so a sandbox needs no network of
/// its own for its web servers to be reached.</summary>
public sealed class SandboxPortProxy : IDisposable
{
    private readonly IHttpForwarder _forwarder;
    private readonly HttpMessageInvoker _invoker;

    public SandboxPortProxy(IHttpForwarder forwarder, SandboxService sandboxes)
    {
        _forwarder = forwarder;
        _invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            ActivityHeadersPropagator = null,

            // The destination "host" is the sandbox id and its port the sandbox's port.
            ConnectCallback = async (context, cancellationToken)
                => await sandboxes.ConnectPortAsync(CallerIdentity.System, context.DnsEndPoint.Host, context.DnsEndPoint.Port, cancellationToken),
        });
    }

    /// <summary>Forwards the request to <paramref name="port"/> of the sandbox, path and query unchanged.</summary>
    /// <returns>Null when forwarded; otherwise why not (nothing answered yet, the caller shapes the error).</returns>
    public async Task<string?> ForwardAsync(HttpContext context, string sandboxId, int port)
    {
        var error = await _forwarder.SendAsync(context, $"http://{sandboxId}:{port}/", _invoker, ForwarderRequestConfig.Empty, HttpTransformer.Default);
        if (error == ForwarderError.None || context.Response.HasStarted)
        {
            return null;
        }

        var cause = context.GetForwarderErrorFeature()?.Exception;
        return cause?.InnerException is CordonException inner ? inner.Message
            : cause is CordonException direct ? direct.Message
            : $"Port {port} of sandbox {sandboxId} did not answer ({error}): is the server in the sandbox running?";
    }

    public void Dispose() => _invoker.Dispose();
}
