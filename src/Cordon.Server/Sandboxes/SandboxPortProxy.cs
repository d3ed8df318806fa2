using System.Net;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Forwarder;

namespace Cordon.Server.Sandboxes;

/// <summary>Forwards HTTP (WebSockets and other upgrades included) to a port inside a sandbox. The forwarding is
/// YARP's; the connection underneath is a tunnel through the sandbox's agent, so a sandbox needs no network of
/// its own for its web servers to be reached.</summary>
/// <remarks>
/// The sandbox is hostile: nothing of the caller's that is Cordon's reaches it. Cordon's credentials (an API key in
/// <c>Authorization</c> or <c>X-API-Key</c>, a sandbox's <c>X-Access-Token</c>), E2B's routing headers and what
/// proxies in front of Cordon add (<c>Forwarded</c>, <c>X-Forwarded-*</c>, <c>X-Real-IP</c>) are removed; the
/// rest of the request (the web app's own headers, cookies and authorization) passes. On the REST route every
/// sandbox shares Cordon's origin, so the cookies a sandbox sets are scoped to its own path
/// (<c>/v1/sandboxes/{id}/ports/{port}/</c>) and lose any <c>Domain</c>: a browser never sends one sandbox's
/// cookies to another sandbox or to the API.
/// </remarks>
public sealed class SandboxPortProxy : IDisposable
{
    private static readonly string[] RemovedHeaders =
    [
        "X-API-Key", "X-Access-Token", "E2b-Sandbox-Id", "E2b-Sandbox-Port", "E2b-Traffic-Access-Token", "Proxy-Authorization",
        "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix",
        "X-Forwarded-Server", "X-Real-IP",
    ];

    private readonly IHttpForwarder _forwarder;
    private readonly ApiKeyService _keys;
    private readonly HttpMessageInvoker _invoker;

    public SandboxPortProxy(IHttpForwarder forwarder, SandboxService sandboxes, ApiKeyService keys)
    {
        _forwarder = forwarder;
        _keys = keys;
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
    /// <param name="cookiePath">Where the sandbox's cookies are scoped (the path prefix the request came in under),
    /// or null when the sandbox has an origin of its own.</param>
    /// <returns>Null when forwarded; otherwise why not (nothing answered yet, the caller shapes the error).</returns>
    public async Task<string?> ForwardAsync(HttpContext context, string sandboxId, int port, string? cookiePath)
    {
        var error = await _forwarder.SendAsync(context, $"http://{sandboxId}:{port}/", _invoker, ForwarderRequestConfig.Empty, new Transformer(_keys, cookiePath));
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

    private sealed class Transformer(ApiKeyService keys, string? cookiePath) : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            foreach (var name in RemovedHeaders)
            {
                proxyRequest.Headers.Remove(name);
            }

            // The web app's own authorization passes; a Cordon API key never does.
            if (httpContext.Request.Headers.Authorization.ToString() is { Length: > 0 } authorization
                && keys.Authenticate(authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? authorization[7..] : authorization) is not null)
            {
                proxyRequest.Headers.Authorization = null;
            }
        }

        public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
        {
            var copied = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
            if (cookiePath is not null && httpContext.Response.Headers.SetCookie is { Count: > 0 } cookies)
            {
                httpContext.Response.Headers.SetCookie = new StringValues([.. cookies.Select(c => Scope(c ?? "", cookiePath))]);
            }

            return copied;
        }

        /// <summary>A Set-Cookie under <paramref name="prefix"/>: its Path joined to the prefix, its Domain dropped.</summary>
        internal static string Scope(string setCookie, string prefix)
        {
            var parts = setCookie.Split(';').Select(p => p.Trim()).Where(p => p.Length > 0).ToList();
            if (parts.Count == 0)
            {
                return setCookie;
            }

            var path = "/";
            var attributes = new List<string>();
            foreach (var attribute in parts.Skip(1))
            {
                var name = attribute.Split('=', 2)[0].Trim();
                if (name.Equals("Path", StringComparison.OrdinalIgnoreCase))
                {
                    path = attribute.Split('=', 2) is [_, var value] && value.StartsWith('/') ? value : "/";
                }
                else if (!name.Equals("Domain", StringComparison.OrdinalIgnoreCase))
                {
                    attributes.Add(attribute);
                }
            }

            return string.Join("; ", [parts[0], $"Path={prefix.TrimEnd('/')}{path}", .. attributes]);
        }
    }
}
