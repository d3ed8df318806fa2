using System.Collections.Concurrent;
using Cordon.Server.Auth;
using Microsoft.AspNetCore.Http;

namespace Cordon.Server.Mcp;

/// <summary>Binds each MCP session to the API key that opened it. The SDK refuses requests of another user in a
/// session, but not its <c>DELETE</c>; this middleware answers every request another key sends in a session as if
/// the session did not exist (404), so a key can neither speak in, end, nor learn of another key's session.</summary>
public sealed class McpSessionOwners(RequestDelegate next)
{
    private const string SessionHeader = "Mcp-Session-Id";

    /// <summary>Sessions remembered at most; the oldest are forgotten first (the SDK closes idle ones on its own).</summary>
    private const int MaxSessions = 20_000;

    private readonly ConcurrentDictionary<string, (string Owner, long Seen)> _owners = new(StringComparer.Ordinal);

    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments(McpEndpoint.Path))
        {
            await next(context);
            return;
        }

        var caller = ApiKeyMiddleware.Caller(context);
        var session = context.Request.Headers[SessionHeader].ToString();
        if (session.Length > 0)
        {
            if (_owners.TryGetValue(session, out var known) && known.Owner != caller.KeyId)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                await context.Response.WriteAsJsonAsync(new
                {
                    jsonrpc = "2.0",
                    error = new { code = -32001, message = "Session not found: start a new one with initialize." },
                    id = (string?)null,
                });
                return;
            }

            if (known.Owner is not null)
            {
                _owners[session] = (known.Owner, Environment.TickCount64);
            }
        }
        else
        {
            // An initialize answer names the new session: it is the caller's.
            context.Response.OnStarting(() =>
            {
                if (context.Response.Headers[SessionHeader].ToString() is { Length: > 0 } opened)
                {
                    Remember(opened, caller.KeyId);
                }

                return Task.CompletedTask;
            });
        }

        await next(context);
        if (session.Length > 0 && HttpMethods.IsDelete(context.Request.Method) && context.Response.StatusCode < 300)
        {
            _owners.TryRemove(session, out _);
        }
    }

    private void Remember(string session, string owner)
    {
        _owners[session] = (owner, Environment.TickCount64);
        if (_owners.Count > MaxSessions)
        {
            foreach (var (old, _) in _owners.OrderBy(o => o.Value.Seen).Take(_owners.Count - MaxSessions * 9 / 10))
            {
                _owners.TryRemove(old, out _);
            }
        }
    }
}
