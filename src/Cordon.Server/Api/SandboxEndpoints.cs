using System.Text;
using System.Text.Json;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Runtime.Agent;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Api;

/// <summary>The REST adapter for sandboxes, commands and files: parsing and shaping only, every decision is
/// the <see cref="SandboxService"/>'s.</summary>
public static class SandboxEndpoints
{
    public static void MapSandboxEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/sandboxes").WithTags("Sandboxes");

        group.MapPost("", async (CreateSandboxRequest? request, HttpContext context, SandboxService sandboxes) =>
        {
            var record = await sandboxes.CreateAsync(ApiKeyMiddleware.Caller(context), request ?? new CreateSandboxRequest(), context.RequestAborted);
            return Results.Created($"/v1/sandboxes/{record.Id}", record.ToInfo());
        }).WithName("CreateSandbox").Produces<SandboxInfo>(201).WithSummary("Create a sandbox and wait until it runs.");

        group.MapGet("", (HttpContext context, SandboxService sandboxes, string? state, string? metadata) =>
        {
            var includeEnded = state is "all" or "ended";
            var filter = ParseMetadataFilter(metadata);
            var records = sandboxes.List(ApiKeyMiddleware.Caller(context), includeEnded, filter)
                .Where(r => state is null or "all" || r.State == state);
            return Results.Ok(records.Select(r => r.ToInfo()).ToList());
        }).WithName("ListSandboxes").Produces<List<SandboxInfo>>().WithSummary("List sandboxes (live ones unless state=all|ended); metadata=k=v,k2=v2 filters.");

        group.MapGet("/{id}", (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok(sandboxes.Get(ApiKeyMiddleware.Caller(context), id).ToInfo()))
            .WithName("GetSandbox").Produces<SandboxInfo>();

        group.MapDelete("/{id}", async (string id, HttpContext context, SandboxService sandboxes) =>
        {
            await sandboxes.DestroyAsync(ApiKeyMiddleware.Caller(context), id, EndReasons.Deleted, context.RequestAborted);
            return Results.NoContent();
        }).WithName("DeleteSandbox").Produces(204).WithSummary("Destroy a sandbox; deleting an ended sandbox succeeds too.");

        group.MapPost("/{id}/pause", async (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok((await sandboxes.PauseAsync(ApiKeyMiddleware.Caller(context), id, context.RequestAborted)).ToInfo()))
            .WithName("PauseSandbox").Produces<SandboxInfo>();

        group.MapPost("/{id}/resume", async (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok((await sandboxes.ResumeAsync(ApiKeyMiddleware.Caller(context), id, context.RequestAborted)).ToInfo()))
            .WithName("ResumeSandbox").Produces<SandboxInfo>();

        group.MapPost("/{id}/timeout", (string id, SetTimeoutRequest request, HttpContext context, SandboxService sandboxes)
            => Results.Ok(sandboxes.SetTimeout(ApiKeyMiddleware.Caller(context), id, request.TimeoutSeconds).ToInfo()))
            .WithName("SetSandboxTimeout").Produces<SandboxInfo>();

        group.MapGet("/{id}/events", (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok(sandboxes.Events(ApiKeyMiddleware.Caller(context), id).ToList()))
            .WithName("GetSandboxEvents").Produces<List<SandboxEvent>>();

        group.MapGet("/{id}/metrics", async (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok(await sandboxes.MetricsAsync(ApiKeyMiddleware.Caller(context), id, context.RequestAborted)))
            .WithName("GetSandboxMetrics").Produces<SandboxMetrics>();

        group.MapPost("/{id}/exec", ExecAsync).WithName("Exec").Produces<ExecResult>()
            .WithSummary("Run a command. With 'Accept: application/x-ndjson' the events (started, stdout, stderr, exit) stream as they happen.");

        // Ports: HTTP and WebSockets to a server inside the sandbox, carried by its agent.
        group.Map("/{id}/ports/{port:int}/{**rest}", async (string id, int port, string? rest, HttpContext context, SandboxService sandboxes, SandboxPortProxy proxy) =>
        {
            var record = sandboxes.Get(ApiKeyMiddleware.Caller(context), id);
            context.Request.Path = "/" + rest;
            if (await proxy.ForwardAsync(context, record.Id, port) is { } failure)
            {
                throw new CordonException("port_unreachable", 502, failure);
            }
        }).WithName("ForwardToPort").ExcludeFromDescription();

        // Files.
        group.MapPut("/{id}/files", async (string id, string? path, string? mode, string? user, HttpContext context, SandboxService sandboxes, IOptions<CordonOptions> options) =>
        {
            AllowLargeBody(context, options.Value.MaxUploadBytes);
            var entry = await sandboxes.WriteFileAsync(ApiKeyMiddleware.Caller(context), id, path, context.Request.Body, ParseMode(mode), user, context.RequestAborted);
            return Results.Ok(entry);
        }).WithName("WriteFile").Accepts<Stream>("application/octet-stream", "*/*").Produces<FileEntry>()
            .WithSummary("Write a file from the raw request body (streamed, any size); it replaces the old file only once complete.");

        group.MapGet("/{id}/files", async (string id, string? path, HttpContext context, SandboxService sandboxes) =>
        {
            var download = await sandboxes.ReadFileAsync(ApiKeyMiddleware.Caller(context), id, path, context.RequestAborted);
            return Results.Stream(download, "application/octet-stream", fileDownloadName: null, enableRangeProcessing: false);
        }).WithName("ReadFile").Produces<Stream>(200, "application/octet-stream");

        group.MapDelete("/{id}/files", async (string id, string? path, HttpContext context, SandboxService sandboxes) =>
        {
            await sandboxes.RemoveFileAsync(ApiKeyMiddleware.Caller(context), id, path, context.RequestAborted);
            return Results.NoContent();
        }).WithName("RemoveFile").Produces(204);

        group.MapGet("/{id}/files/list", async (string id, string? path, int? depth, HttpContext context, SandboxService sandboxes) =>
        {
            var listing = await sandboxes.ListFilesAsync(ApiKeyMiddleware.Caller(context), id, path, depth ?? 1, context.RequestAborted);
            return Results.Ok(new FileListing(SandboxPaths.Normalize(path!), listing.Entries));
        }).WithName("ListFiles").Produces<FileListing>();

        group.MapGet("/{id}/files/stat", async (string id, string? path, HttpContext context, SandboxService sandboxes)
            => Results.Ok(await sandboxes.StatFileAsync(ApiKeyMiddleware.Caller(context), id, path, context.RequestAborted)))
            .WithName("StatFile").Produces<FileEntry>();

        group.MapPost("/{id}/files/mkdir", async (string id, string? path, HttpContext context, SandboxService sandboxes)
            => Results.Ok(await sandboxes.MakeDirAsync(ApiKeyMiddleware.Caller(context), id, path, context.RequestAborted)))
            .WithName("MakeDirectory").Produces<FileEntry>();

        group.MapPost("/{id}/files/rename", async (string id, RenameRequestBody body, HttpContext context, SandboxService sandboxes)
            => Results.Ok(await sandboxes.RenameFileAsync(ApiKeyMiddleware.Caller(context), id, body.From, body.To, context.RequestAborted)))
            .WithName("RenameFile").Produces<FileEntry>();
    }

    private static async Task<IResult> ExecAsync(string id, ExecRequestBody body, HttpContext context, SandboxService sandboxes)
    {
        var caller = ApiKeyMiddleware.Caller(context);
        if (!Ndjson.Requested(context))
        {
            return Results.Ok(await sandboxes.ExecAsync(caller, id, body, context.RequestAborted));
        }

        var request = sandboxes.BuildExecRequest(body);
        var session = await sandboxes.StartExecAsync(caller, id, request, context.RequestAborted);
        return new NdjsonExecResult(session, body.Stdin);
    }

    /// <summary>Streams a running command as NDJSON, one flushed line per event.</summary>
    private sealed class NdjsonExecResult(ExecSession session, string? stdin) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            await using var _ = session;
            var cancellationToken = context.RequestAborted;
            Ndjson.Begin(context);
            await WriteAsync(context, new ExecStreamEvent { Type = "started", Pid = session.Pid }, cancellationToken);
            if (stdin is not null)
            {
                await session.WriteStdinAsync(Encoding.UTF8.GetBytes(stdin), cancellationToken);
                await session.CloseStdinAsync(cancellationToken);
            }

            var decoders = new Dictionary<ExecEventKind, Decoder> { [ExecEventKind.Stdout] = Encoding.UTF8.GetDecoder(), [ExecEventKind.Stderr] = Encoding.UTF8.GetDecoder() };
            try
            {
                await foreach (var e in session.ReadEventsAsync(cancellationToken))
                {
                    if (e.Kind == ExecEventKind.Exit)
                    {
                        await WriteAsync(context, new ExecStreamEvent
                        {
                            Type = "exit",
                            ExitCode = e.Exit!.ExitCode,
                            Signal = e.Exit.Signal,
                            TimedOut = e.Exit.TimedOut,
                            DurationMs = e.Exit.DurationMs,
                        }, cancellationToken);
                        continue;
                    }

                    // A decoder per stream keeps multi-byte characters split across chunks whole.
                    var decoder = decoders[e.Kind];
                    var chars = new char[decoder.GetCharCount(e.Data, flush: false)];
                    decoder.GetChars(e.Data, chars, flush: false);
                    if (chars.Length > 0)
                    {
                        await WriteAsync(context, new ExecStreamEvent { Type = e.Kind == ExecEventKind.Stdout ? "stdout" : "stderr", Data = new string(chars) }, cancellationToken);
                    }
                }
            }
            catch (AgentErrorException ex)
            {
                await WriteAsync(context, new ExecStreamEvent { Type = "error", Message = ex.Message }, cancellationToken);
            }
            catch (IOException ex) when (!cancellationToken.IsCancellationRequested)
            {
                await WriteAsync(context, new ExecStreamEvent { Type = "error", Message = "The connection to the sandbox broke: " + ex.Message }, cancellationToken);
            }
        }

        private static Task WriteAsync(HttpContext context, ExecStreamEvent e, CancellationToken cancellationToken)
            => Ndjson.WriteAsync(context, e, ApiJsonContext.Default.ExecStreamEvent, cancellationToken);
    }

    internal static void AllowLargeBody(HttpContext context, long limit)
    {
        var feature = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (feature is { IsReadOnly: false })
        {
            feature.MaxRequestBodySize = limit;
        }
    }

    private static int? ParseMode(string? mode)
    {
        if (string.IsNullOrEmpty(mode))
        {
            return null;
        }

        try
        {
            return Convert.ToInt32(mode, 8);
        }
        catch (FormatException)
        {
            throw CordonException.Invalid($"mode '{mode}' is not an octal permission such as 644 or 755.");
        }
    }

    private static Dictionary<string, string>? ParseMetadataFilter(string? metadata)
    {
        if (string.IsNullOrEmpty(metadata))
        {
            return null;
        }

        var filter = new Dictionary<string, string>();
        foreach (var pair in metadata.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw CordonException.Invalid($"metadata filter '{pair}' is not key=value.");
            }

            filter[pair[..eq]] = pair[(eq + 1)..];
        }

        return filter;
    }
}
