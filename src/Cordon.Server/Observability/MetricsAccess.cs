using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Cordon.Server.Observability;

/// <summary>/metrics names every key and what it holds: only an admin key may read it (Prometheus sends one as
/// <c>authorization: {credentials: …}</c> in its scrape config).</summary>
internal static class MetricsAccess
{
    public static void AdminsOnly(IApplicationBuilder branch)
        => branch.Use(async (context, next) =>
        {
            if (ApiKeyMiddleware.Caller(context).Admin)
            {
                await next(context);
                return;
            }

            await Results.Problem(
                statusCode: StatusCodes.Status403Forbidden,
                title: "Forbidden",
                detail: "/metrics shows every tenant's usage: scrape it with an admin key.",
                type: "https://cordon.dev/errors/" + ErrorCodes.Name(ErrorCode.AdminRequired),
                extensions: new Dictionary<string, object?> { ["code"] = ErrorCodes.Name(ErrorCode.AdminRequired) }).ExecuteAsync(context);
        });
}
