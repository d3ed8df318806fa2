using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Http;
using Cordon.Server.Sandboxes;
using Cordon.Server.Shapes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Cordon.Server.Api;

/// <summary>The REST adapter for the code interpreter: runs and contexts.</summary>
public static class CodeEndpoints
{
    public static void MapCodeEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/sandboxes/{id}").WithTags("Code");

        group.MapPost("/code", RunAsync).WithName("RunCode").Produces<CodeRunResult>()
            .WithSummary("Run code in a stateful context (variables survive between runs). With 'Accept: application/x-ndjson' the events " +
                "(stdout, stderr, result, error, end) stream as they happen; closing the stream interrupts the run.");

        group.MapPost("/contexts", async (string id, CreateContextRequestBody? body, HttpContext context, SandboxService sandboxes) =>
        {
            var request = body ?? new CreateContextRequestBody();
            var created = await sandboxes.CreateContextAsync(ApiKeyMiddleware.Caller(context), id,
                new ContextSpec { Language = request.Language, Cwd = request.Cwd, Env = request.Env, User = request.User }, context.RequestAborted);
            return Results.Created($"/v1/sandboxes/{id}/contexts/{created.Id}", created);
        }).WithName("CreateContext").Produces<ContextInfo>(201).WithSummary("Start a code context (a live interpreter) and wait until it is ready.");

        group.MapGet("/contexts", async (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok(new ContextList(await sandboxes.ListContextsAsync(ApiKeyMiddleware.Caller(context), id, context.RequestAborted))))
            .WithName("ListContexts").Produces<ContextList>();

        group.MapGet("/contexts/{contextId}", async (string id, string contextId, HttpContext context, SandboxService sandboxes)
            => Results.Ok(await sandboxes.GetContextAsync(ApiKeyMiddleware.Caller(context), id, contextId, context.RequestAborted)))
            .WithName("GetContext").Produces<ContextInfo>();

        group.MapDelete("/contexts/{contextId}", async (string id, string contextId, HttpContext context, SandboxService sandboxes) =>
        {
            await sandboxes.DeleteContextAsync(ApiKeyMiddleware.Caller(context), id, contextId, context.RequestAborted);
            return Results.NoContent();
        }).WithName("DeleteContext").Produces(204).WithSummary("Stop a context's interpreter and forget it.");

        group.MapPost("/contexts/{contextId}/restart", async (string id, string contextId, HttpContext context, SandboxService sandboxes)
            => Results.Ok(await sandboxes.RestartContextAsync(ApiKeyMiddleware.Caller(context), id, contextId, context.RequestAborted)))
            .WithName("RestartContext").Produces<ContextInfo>().WithSummary("Replace the context's interpreter with a fresh one; its state is lost.");

        group.MapPost("/contexts/{contextId}/interrupt", async (string id, string contextId, HttpContext context, SandboxService sandboxes) =>
        {
            await sandboxes.InterruptContextAsync(ApiKeyMiddleware.Caller(context), id, contextId, context.RequestAborted);
            return Results.NoContent();
        }).WithName("InterruptContext").Produces(204).WithSummary("Interrupt the code running in the context; the context keeps its state.");
    }

    private static async Task<IResult> RunAsync(string id, RunCodeRequestBody body, HttpContext context, SandboxService sandboxes)
    {
        var caller = ApiKeyMiddleware.Caller(context);
        var spec = new CodeSpec
        {
            Code = body.Code ?? throw CordonException.Invalid("code is missing: give the code to run."),
            Language = body.Language,
            ContextId = body.ContextId,
            TimeoutSeconds = body.TimeoutSeconds,
            Env = body.Env,
        };
        if (!Ndjson.Requested(context))
        {
            return Results.Ok((await sandboxes.RunCodeAsync(caller, id, spec, context.RequestAborted)).ToResult());
        }

        return new NdjsonCodeResult(await sandboxes.StartCodeAsync(caller, id, spec, context.RequestAborted));
    }

    /// <summary>Streams a code run as NDJSON, one flushed line per event; the last line is the end event.</summary>
    private sealed class NdjsonCodeResult(RunningCode run) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            await using var _ = run;
            var cancellationToken = context.RequestAborted;
            Ndjson.Begin(context);
            try
            {
                await foreach (var e in run.ReadEventsAsync(cancellationToken))
                {
                    await Ndjson.WriteAsync(context, e, ApiJsonContext.Default.CodeEvent, cancellationToken);
                }
            }
            catch (CordonException ex)
            {
                await WriteFailureAsync(context, ex.Message, cancellationToken);
            }
        }

        /// <summary>The stream already said 200: a failure midway is an error event and an end that says so.</summary>
        private static async Task WriteFailureAsync(HttpContext context, string message, CancellationToken cancellationToken)
        {
            await Ndjson.WriteAsync(context, new CodeEvent { Type = CodeEventTypes.Error, Name = "SandboxError", Value = message, Traceback = [] }, ApiJsonContext.Default.CodeEvent, cancellationToken);
            await Ndjson.WriteAsync(context, new CodeEvent { Type = CodeEventTypes.End, Status = Protocol.CodeRunStatus.Died }, ApiJsonContext.Default.CodeEvent, cancellationToken);
        }
    }
}
