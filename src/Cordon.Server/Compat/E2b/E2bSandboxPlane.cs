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

        if (sandbox is not { State: SandboxState.Running })
        {
            // envd's proxy answers 502 for a sandbox that is not running: the SDK reads it as "sandbox gone".
            await E2bErrors.Body(502, $"The sandbox {target.SandboxId} is not running.").ExecuteAsync(context);
            return;
        }

        var owner = new CallerIdentity(sandbox.Owner, Admin: false);
        var token = context.Request.Headers["X-Access-Token"].ToString();
        var tokens = services.GetRequiredService<SandboxTokens>();

        // As on E2B: a sandbox's own ports are reachable by anyone who knows its id (a 20-character secret),
        // envd and /execute need the sandbox's access token.
        var open = (target.Port == EnvdPort && context.Request.Path == "/health")
            || (target.Port == CodeInterpreterPort && context.Request.Path.StartsWithSegments("/contexts"))
            || target.Port is not (EnvdPort or CodeInterpreterPort);
        if (!open && !tokens.IsValid(sandbox.Id, token))
        {
            await E2bErrors.Body(401, "The X-Access-Token header is missing or wrong for this sandbox (the SDK sends the envdAccessToken from create).").ExecuteAsync(context);
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
            .Where(s => s.State == SandboxState.Running)
            .FirstOrDefault(s => tokens.IsValidSignature(s.Id, query["path"].ToString(), operation, query["username"].ToString(), query["signature"].ToString(),
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
            return (id.ToString(), int.TryParse(headers["E2b-Sandbox-Port"], out var port) ? port : EnvdPort);
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
