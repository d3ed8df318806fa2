using System.Security.Claims;
using Cordon.Server.Errors;
using Microsoft.AspNetCore.Http;

namespace Cordon.Server.Auth;

/// <summary>Requires an API key (<c>Authorization: Bearer</c>, or <c>X-API-Key</c>) on everything but the
/// health endpoint and the OpenAPI document.</summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, ApiKeyService keys, RequestRates rates)
{
    private const string CallerKey = "cordon.caller";

    public async Task InvokeAsync(HttpContext context)
    {
        var path = context.Request.Path;
        // E2B's volume content API authorises with the volume's own token (Compat/E2b/E2bVolumes.cs), template file
        // uploads with their link's signature (Compat/E2b/E2bTemplates.cs).
        if (path.StartsWithSegments("/health") || path.StartsWithSegments("/openapi") || path.StartsWithSegments(Compat.E2b.E2bVolumes.ContentPrefix)
            || path.StartsWithSegments(Compat.E2b.E2bTemplates.UploadPrefix))
        {
            await next(context);
            return;
        }

        var header = context.Request.Headers.Authorization.ToString();
        var secret = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? header["Bearer ".Length..]
            : context.Request.Headers["X-API-Key"].ToString();
        var caller = keys.Authenticate(secret);
        if (caller is null)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await Results.Problem(
                statusCode: 401,
                title: "Unauthorized",
                detail: string.IsNullOrEmpty(secret)
                    ? "No API key was sent: add the header 'Authorization: Bearer <key>' (the key is printed when the server first starts, or set CORDON_API_KEY)."
                    : "The API key is not valid: check the key, or ask the server's operator for a new one.",
                type: "https://cordon.dev/errors/" + ErrorCodes.Name(ErrorCode.Unauthorized),
                extensions: new Dictionary<string, object?> { ["code"] = ErrorCodes.Name(ErrorCode.Unauthorized) }).ExecuteAsync(context);
            return;
        }

        if (rates.Refusal(caller.KeyId) is { } wait)
        {
            context.Response.Headers.RetryAfter = wait.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await Results.Problem(
                statusCode: 429,
                title: "Too many requests",
                detail: $"This key sends more requests than its quota allows (GET /v1/quotas shows it): wait {wait} s, then send fewer at a time.",
                type: "https://cordon.dev/errors/" + ErrorCodes.Name(ErrorCode.QuotaExceeded),
                extensions: new Dictionary<string, object?> { ["code"] = ErrorCodes.Name(ErrorCode.QuotaExceeded) }).ExecuteAsync(context);
            return;
        }

        context.Items[CallerKey] = caller;

        // The key as the request's user: the MCP SDK binds each session to the user that opened it, so another key
        // cannot send requests in it or end it.
        context.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, caller.KeyId)], "CordonApiKey"));
        await next(context);
    }

    /// <summary>The authenticated caller of a request that passed this middleware.</summary>
    public static CallerIdentity Caller(HttpContext context)
        => context.Items[CallerKey] as CallerIdentity ?? throw new InvalidOperationException("The request was not authenticated.");
}
