using System.Text;
using System.Text.RegularExpressions;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Cordon.Server.Compat.E2b;

/// <summary>The traffic E2B's SDKs send into a sandbox (what <c>E2B_SANDBOX_URL</c> points at), recognised by the
/// <c>E2b-Sandbox-Id</c> and <c>E2b-Sandbox-Port</c> headers or a host name <c>{port}-{sandboxId}.{domain}</c>:
/// envd on logical port 49983 (Connect RPC and <c>/files</c>), the code interpreter on 49999. It runs before
/// API-key authentication, because this traffic carries the sandbox's access token instead.</summary>
public sealed partial class E2bSandboxPlane(RequestDelegate next)
{
    public const int EnvdPort = 49983;
    public const int CodeInterpreterPort = 49999;

    public async Task InvokeAsync(HttpContext context)
    {
        if (Target(context) is not { } target)
        {
            if (context.Request.Path == "/files" && context.Request.Query.ContainsKey("signature"))
            {
                await SignedFilesAsync(context);
                return;
            }

            await next(context);
            return;
        }

        if (target.Port is < 1 or > 65535)
        {
            await E2bErrors.Body(400, $"The sandbox port must be a TCP port (1-65535); {target.Port} is not.").ExecuteAsync(context);
            return;
        }

        var services = context.RequestServices;
        var sandboxes = services.GetRequiredService<SandboxService>();
        Sandbox? sandbox = null;
        try
        {
            sandbox = sandboxes.Get(CallerIdentity.System, target.SandboxId);
        }
        catch (CordonException)
        {
        }

        // A paused or stopped sandbox that asked for autoResume answers as a running one: its agent wakes it on the
        // request's first connection.
        if (sandbox is not ({ State: SandboxState.Running } or { State: SandboxState.Paused or SandboxState.Stopped, Timers.AutoResume: true }))
        {
            // envd's proxy answers 502 for a sandbox that is not running: the SDK reads it as "sandbox gone".
            await E2bErrors.Body(502, $"The sandbox {target.SandboxId} is not running.").ExecuteAsync(context);
            return;
        }

        var owner = new CallerIdentity(sandbox.Owner, Admin: false);
        if (Refusal(context, services.GetRequiredService<SandboxTokens>(), sandbox, target.Port) is { } refusal)
        {
            await E2bErrors.Body(401, refusal).ExecuteAsync(context);
            return;
        }

        if (services.GetRequiredService<RequestRates>().Refusal(sandbox.Owner) is { } wait)
        {
            context.Response.Headers.RetryAfter = wait.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await E2bErrors.Body(429, $"The sandbox's key sends more requests than its quota allows: wait {wait} s, then send fewer at a time.").ExecuteAsync(context);
            return;
        }

        switch (target.Port)
        {
            case EnvdPort:
                await services.GetRequiredService<Envd>().HandleAsync(context, sandbox, owner);
                break;
            case CodeInterpreterPort:
                await CodeInterpreter.HandleAsync(context, sandboxes, sandbox, owner);
                break;
            default:
                // The sandbox's port has an origin of its own ({port}-{id}.domain): its cookies need no scoping.
                if (await services.GetRequiredService<SandboxPortProxy>().ForwardAsync(context, sandbox.Id, target.Port, cookiePath: null) is { } failure)
                {
                    await E2bErrors.Body(502, failure).ExecuteAsync(context);
                }

                break;
        }
    }

    /// <summary>Why a request may not reach the sandbox, or null when it may. envd (but its health check) and the
    /// code interpreter's <c>/execute</c> need the envd token; the code contexts need the traffic token (which the SDK
    /// sends there) or the envd token; the sandbox's own web ports are open to anyone who knows its id when its
    /// creator asked for public traffic (E2B's default), and need the traffic token otherwise.</summary>
    private static string? Refusal(HttpContext context, SandboxTokens tokens, Sandbox sandbox, int port)
    {
        var headers = context.Request.Headers;
        var envd = headers["X-Access-Token"].ToString();
        var traffic = headers["E2B-Traffic-Access-Token"].ToString();
        var path = context.Request.Path;
        return port switch
        {
            EnvdPort when path == "/health" => null,
            CodeInterpreterPort when path.StartsWithSegments("/contexts") => tokens.IsValidTraffic(sandbox.Id, sandbox.Owner, traffic.Length > 0 ? traffic : envd)
                ? null
                : "The E2B-Traffic-Access-Token header is missing or wrong for this sandbox (the SDK sends the trafficAccessToken from create).",
            EnvdPort or CodeInterpreterPort => tokens.IsValidEnvd(sandbox.Id, sandbox.Owner, envd)
                ? null
                : "The X-Access-Token header is missing or wrong for this sandbox (the SDK sends the envdAccessToken from create).",
            _ => sandbox.PublicPorts || tokens.IsValidTraffic(sandbox.Id, sandbox.Owner, traffic.Length > 0 ? traffic : envd)
                ? null
                : "This sandbox's ports are not public: send its trafficAccessToken (from create) in the E2B-Traffic-Access-Token header, or create it with network.allowPublicTraffic.",
        };
    }

    /// <summary>A signed upload or download URL names no sandbox (the SDK builds it from the shared sandbox URL):
    /// the sandbox is the one whose access token reproduces the signature, one hash per live sandbox.</summary>
    private static async Task SignedFilesAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var sandboxes = services.GetRequiredService<SandboxService>();
        var tokens = services.GetRequiredService<SandboxTokens>();
        var query = context.Request.Query;
        var operation = HttpMethods.IsGet(context.Request.Method) ? "read" : "write";
        var signed = sandboxes.List(CallerIdentity.System, includeEnded: false, metadata: null)
            .Where(s => s.State == SandboxState.Running || s.Timers.AutoResume)
            .FirstOrDefault(s => tokens.IsValidSignature(s.Id, s.Owner, query["path"].ToString(), operation, query["username"].ToString(), query["signature"].ToString(),
                query.TryGetValue("signature_expiration", out var expiration) ? expiration.ToString() : null));
        if (signed is null)
        {
            await E2bErrors.Body(401, "The signature does not match any running sandbox, or it has expired: get a new URL from uploadUrl()/downloadUrl().").ExecuteAsync(context);
            return;
        }

        await services.GetRequiredService<Envd>().HandleAsync(context, signed, new CallerIdentity(signed.Owner, Admin: false));
    }

    private static (string SandboxId, int Port)? Target(HttpContext context)
    {
        var headers = context.Request.Headers;
        if (headers.TryGetValue("E2b-Sandbox-Id", out var id) && !string.IsNullOrEmpty(id))
        {
            var header = headers["E2b-Sandbox-Port"].ToString();
            return (id.ToString(), header.Length == 0 ? EnvdPort : int.TryParse(header, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) ? port : -1);
        }

        var match = HostRegex().Match(context.Request.Host.Host);
        return match.Success ? (match.Groups[2].Value, int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)) : null;
    }

    /// <summary>The basic-auth user name the SDK sends to pick the user (<c>Basic base64("user:")</c>), if any.</summary>
    internal static string? BasicUser(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            var user = decoded.Split(':', 2)[0];
            return user.Length > 0 ? user : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    [GeneratedRegex("^([0-9]{1,5})-([a-z0-9]{20})\\.", RegexOptions.CultureInvariant)]
    private static partial Regex HostRegex();
}
