using System.Text.Json;
using System.Text.Json.Nodes;
using Cordon.Protocol;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Http;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Http;

namespace Cordon.Server.Compat.E2b;

/// <summary>E2B's code-interpreter server (logical port 49999): <c>/execute</c> streams NDJSON, <c>/contexts</c>
/// manages contexts. Both run on Cordon's code engine, with results mapped to E2B's result fields.</summary>
internal static partial class CodeInterpreter
{
    /// <summary>E2B's long-running cells are bounded by the client (<c>timeoutMs</c>, which closes the stream and so
    /// interrupts the run); the server's own limit only catches runs nobody waits for.</summary>
    private const int RunLimitSeconds = 3600;

    public static async Task HandleAsync(HttpContext context, SandboxService sandboxes, Sandbox sandbox, CallerIdentity caller)
    {
        var path = context.Request.Path.Value ?? "";
        var method = context.Request.Method;
        try
        {
            switch (method, path)
            {
                case ("POST", "/execute"):
                    await ExecuteAsync(context, sandboxes, sandbox, caller);
                    break;
                case ("GET", "/health"):
                    context.Response.StatusCode = 200;
                    await context.Response.WriteAsync("OK");
                    break;
                case ("POST", "/contexts"):
                    var body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject ?? [];
                    var created = await sandboxes.CreateContextAsync(caller, sandbox.Id, new ContextSpec
                    {
                        Language = Language(body["language"]?.GetValue<string>()),
                        Cwd = body["cwd"]?.GetValue<string>() ?? Home(sandbox),
                        User = Envd.DefaultUser(sandbox),
                    }, context.RequestAborted);
                    await Results.Json(Context(created)).ExecuteAsync(context);
                    break;
                case ("GET", "/contexts"):
                    var contexts = await sandboxes.ListContextsAsync(caller, sandbox.Id, context.RequestAborted);
                    await Results.Json(contexts.Select(Context).ToList()).ExecuteAsync(context);
                    break;
                case ("POST", _) when path.StartsWith("/contexts/", StringComparison.Ordinal) && path.EndsWith("/restart", StringComparison.Ordinal):
                    await sandboxes.RestartContextAsync(caller, sandbox.Id, path["/contexts/".Length..^"/restart".Length], context.RequestAborted);
                    context.Response.StatusCode = 204;
                    break;
                case ("DELETE", _) when path.StartsWith("/contexts/", StringComparison.Ordinal):
                    await sandboxes.DeleteContextAsync(caller, sandbox.Id, path["/contexts/".Length..], context.RequestAborted);
                    context.Response.StatusCode = 204;
                    break;
                default:
                    await E2bErrors.Body(404, $"The code interpreter has no {method} {path}.").ExecuteAsync(context);
                    break;
            }
        }
        catch (CordonException ex) when (!context.Response.HasStarted)
        {
            await E2bErrors.From(ex).ExecuteAsync(context);
        }
        catch (JsonException ex) when (!context.Response.HasStarted)
        {
            await E2bErrors.Body(400, $"The request body is not valid JSON: {JsonFaults.Describe(ex)}.").ExecuteAsync(context);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException && !context.Response.HasStarted)
        {
            // A field of the wrong JSON type (a number where a string belongs …).
            await E2bErrors.Body(400, "A field of the request has the wrong type: " + ex.Message).ExecuteAsync(context);
        }
    }

    private static async Task ExecuteAsync(HttpContext context, SandboxService sandboxes, Sandbox sandbox, CallerIdentity caller)
    {
        var body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject
            ?? throw CordonException.Invalid("The body must be a JSON object with 'code'.");
        var contextId = body["context_id"]?.GetValue<string>();
        var language = body["language"]?.GetValue<string>();
        if (contextId is not null && language is not null)
        {
            throw CordonException.Invalid("Give either context_id or language, not both.");
        }

        var spec = new CodeSpec
        {
            Code = body["code"]?.GetValue<string>() ?? throw CordonException.Invalid("code is missing: give the code to run."),
            ContextId = contextId,
            Language = contextId is null ? Language(language) : null,
            TimeoutSeconds = RunLimitSeconds,
            Env = (body["env_vars"] as JsonObject)?.ToDictionary(e => e.Key, e => e.Value?.ToString() ?? ""),
        };
        await using var run = await sandboxes.StartCodeAsync(caller, sandbox.Id, spec, context.RequestAborted);
        Ndjson.Begin(context);
        var cancellationToken = context.RequestAborted;
        try
        {
            await foreach (var e in run.ReadEventsAsync(cancellationToken))
            {
                foreach (var line in Lines(e))
                {
                    await Ndjson.WriteAsync(context, line, AppJson.Default.JsonObject, cancellationToken);
                }
            }
        }
        catch (CordonException ex)
        {
            await Ndjson.WriteAsync(context, new JsonObject { ["type"] = "error", ["name"] = "SandboxError", ["value"] = ex.Message, ["traceback"] = "" }, AppJson.Default.JsonObject, cancellationToken);
        }
    }

    /// <summary>One Cordon event as E2B's NDJSON lines.</summary>
    private static IEnumerable<JsonObject> Lines(CodeEvent e)
    {
        var now = DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
        switch (e.Type)
        {
            case CodeEventTypes.Stdout or CodeEventTypes.Stderr:
                yield return new JsonObject { ["type"] = e.Type, ["text"] = e.Text, ["timestamp"] = now };
                break;
            case CodeEventTypes.Result:
                yield return Result(e);
                break;
            case CodeEventTypes.Error:
                yield return new JsonObject { ["type"] = "error", ["name"] = e.Name, ["value"] = e.Value, ["traceback"] = string.Join('\n', e.Traceback ?? []) };
                break;
            case CodeEventTypes.End:
                if (e.Status is Protocol.CodeRunStatus.Timeout or Protocol.CodeRunStatus.Died && e.Status is var status)
                {
                    yield return new JsonObject { ["type"] = "error", ["name"] = status == Protocol.CodeRunStatus.Died ? "ContextDied" : "TimeoutError", ["value"] = $"The run ended: {status}.", ["traceback"] = "" };
                }

                yield return new JsonObject { ["type"] = "number_of_executions", ["execution_count"] = e.ExecutionCount };
                yield return new JsonObject { ["type"] = "end_of_execution" };
                break;
        }
    }

    /// <summary>A MIME bundle as E2B's result: one field per known type, the rest under <c>extra</c>.</summary>
    private static JsonObject Result(CodeEvent e)
    {
        var result = new JsonObject { ["type"] = "result", ["is_main_result"] = e.IsMainResult == true };
        var extra = new JsonObject();
        foreach (var (mime, value) in e.Data ?? [])
        {
            var field = mime switch
            {
                "text/plain" => "text",
                "text/html" => "html",
                "text/markdown" => "markdown",
                "image/svg+xml" => "svg",
                "image/png" => "png",
                "image/jpeg" => "jpeg",
                "application/pdf" => "pdf",
                "text/latex" => "latex",
                "application/json" => "json",
                "application/javascript" => "javascript",
                "e2b/data" => "data",
                "e2b/chart" => "chart",
                _ => null,
            };
            var node = JsonNode.Parse(value.GetRawText());
            if (field == "text" && node?.GetValueKind() == JsonValueKind.String && node.GetValue<string>() is { Length: >= 2 } text
                && text[0] == text[^1] && text[0] is '\'' or '"')
            {
                // As E2B's interpreter does: a string result is its text, not its repr.
                node = text[1..^1];
            }

            if (field is null)
            {
                extra[mime] = node;
            }
            else
            {
                result[field] = node;
            }
        }

        result["extra"] = extra;
        return result;
    }

    private static JsonObject Context(Protocol.ContextInfo info) => new() { ["id"] = info.Id, ["language"] = info.Language, ["cwd"] = info.Cwd };

    /// <summary>E2B runs TypeScript on its JavaScript kernel; Cordon has a TypeScript driver, so it keeps the name.</summary>
    private static string Language(string? language) => string.IsNullOrEmpty(language) ? "python" : language;

    private static string Home(Sandbox sandbox) => SandboxUsers.HomeOf(Envd.DefaultUser(sandbox) ?? sandbox.DefaultUser);

    [System.Text.Json.Serialization.JsonSerializable(typeof(JsonObject))]
    private sealed partial class AppJson : System.Text.Json.Serialization.JsonSerializerContext;
}
