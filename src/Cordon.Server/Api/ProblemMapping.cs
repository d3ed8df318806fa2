using Cordon.Server.Errors;
using Cordon.Server.Http;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Cordon.Server.Api;

/// <summary>The one place where failures become RFC 9457 problem details for REST. Expected failures carry
/// their code and message; malformed requests say what was malformed; anything else is logged and answered
/// without internals.</summary>
public sealed partial class ProblemMapping(ILogger<ProblemMapping> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var (status, code, detail, retryAfter) = exception switch
        {
            CordonException ce => (ErrorStatus.Of(ce.Code), ce.CodeName, WithHint(ce), ce.RetryAfterSeconds),
            BadHttpRequestException bad when bad.StatusCode == 413 => (413, "body_too_large", "The request body is larger than this endpoint accepts: send less, or stream large files with PUT /v1/sandboxes/{id}/files.", (int?)null),
            BadHttpRequestException bad => (bad.StatusCode, "invalid_request", Describe(bad), null),
            System.Text.Json.JsonException json => (400, "invalid_json", $"The request body is not valid JSON for this endpoint: {JsonFaults.Describe(json)}.", null),
            OperationCanceledException when context.RequestAborted.IsCancellationRequested => (499, "client_closed", "The client went away.", null),
            _ => (500, "internal_error", "The server failed unexpectedly; the failure is in its log. Retry, and report it if it persists.", null),
        };
        if (status == 500)
        {
            LogUnexpected(exception);
        }

        if (context.Response.HasStarted)
        {
            return true; // a streamed answer was under way; the stream itself reports the error
        }

        // A request that failed halfway through its body (an upload into a full disk, a refused archive): read
        // and drop the rest, bounded, so the client gets to read this answer instead of a connection reset.
        await DrainAsync(context.Request.Body, cancellationToken);

        if (retryAfter is { } seconds)
        {
            context.Response.Headers.RetryAfter = seconds.ToString();
        }

        context.Response.StatusCode = status;
        await Results.Problem(
            statusCode: status,
            title: Title(status),
            detail: detail,
            type: $"https://cordon.dev/errors/{code}",
            extensions: new Dictionary<string, object?> { ["code"] = code }).ExecuteAsync(context);
        return true;
    }

    /// <summary>Gives the answers ASP.NET Core writes itself (unknown route, wrong method, body too large …) the
    /// same <c>code</c> and an actionable message, like every other error of the API.</summary>
    public static void CompleteFrameworkProblem(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        var status = problem.Status ?? context.HttpContext.Response.StatusCode;
        var (code, detail) = status switch
        {
            404 => ("not_found", "No such endpoint: the API is described at GET /openapi/v1.json."),
            405 => ("method_not_allowed", "This endpoint does not take that HTTP method: the API is described at GET /openapi/v1.json."),
            413 => ("body_too_large", "The request body is larger than this endpoint accepts: send less, or stream large files with PUT /v1/sandboxes/{id}/files."),
            415 => ("unsupported_media_type", "This endpoint takes a JSON body: send 'Content-Type: application/json'."),
            400 => ("invalid_request", "The request is malformed."),
            _ => ("http_" + status, null),
        };
        problem.Extensions.TryAdd("code", code);
        problem.Detail ??= detail;
    }

    private static async Task DrainAsync(Stream body, CancellationToken cancellationToken)
    {
        const long limit = 256L << 20;
        var buffer = new byte[81920];
        long drained = 0;
        try
        {
            int n;
            while (drained < limit && (n = await body.ReadAsync(buffer, cancellationToken)) > 0)
            {
                drained += n;
            }
        }
        catch (Exception ex) when (ex is IOException or BadHttpRequestException or OperationCanceledException or InvalidOperationException)
        {
            // Nothing more to read (too large, aborted, or already consumed).
        }
    }

    private static string Describe(BadHttpRequestException bad) => bad.InnerException switch
    {
        // Minimal APIs wrap the JSON fault in "Failed to read parameter "T request" …", which names a server type.
        System.Text.Json.JsonException json => $"The request body is not what this endpoint takes: {JsonFaults.Describe(json)}.",
        { } inner => $"{bad.Message.TrimEnd('.')}: {inner.Message}",
        null => bad.Message,
    };

    /// <summary>The service's message, and where REST has its own way to act on it, that way.</summary>
    private static string WithHint(CordonException ex)
    {
        var id = ex.Subject ?? "{id}";
        var hint = ex.Code switch
        {
            ErrorCode.SandboxNotFound => "List your sandboxes with GET /v1/sandboxes, or create one with POST /v1/sandboxes.",
            ErrorCode.SandboxPaused => $"Resume it with POST /v1/sandboxes/{id}/resume.",
            ErrorCode.SandboxStopped => $"Start it with POST /v1/sandboxes/{id}/start.",
            ErrorCode.SnapshotNotFound => "List your snapshots with GET /v1/snapshots.",
            ErrorCode.SandboxEnded => "Create a new one with POST /v1/sandboxes; its history is at GET /v1/sandboxes/" + id + "/events.",
            ErrorCode.QuotaExceeded => "GET /v1/quotas shows your limits and use; GET /v1/sandboxes lists yours; DELETE /v1/sandboxes/{id} ends one.",
            ErrorCode.HostDiskFull => "Ask for a smaller diskMiB, or destroy sandboxes you no longer need.",
            ErrorCode.ImageNotFound => "List images with GET /v1/images, or import one with POST /v1/images?name=.",
            ErrorCode.ContextNotFound => $"List the contexts with GET /v1/sandboxes/{id}/contexts.",
            ErrorCode.SandboxUnreachable => $"Check the sandbox with GET /v1/sandboxes/{id}.",
            ErrorCode.ImageNotReady => "Follow the build with GET /v1/images/{name} or GET /health.",
            _ => null,
        };
        return hint is null ? ex.Message : ex.Message + " " + hint;
    }

    private static string Title(int status) => status switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload too large",
        429 => "Too many sandboxes",
        502 => "Sandbox error",
        503 => "Unavailable",
        507 => "Insufficient storage",
        _ => "Error",
    };

    [LoggerMessage(EventId = 5001, Level = LogLevel.Error, Message = "Unexpected failure")]
    private partial void LogUnexpected(Exception exception);
}
