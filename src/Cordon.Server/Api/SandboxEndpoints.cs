using System.Text.Json;
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
            var body = request ?? new CreateSandboxRequest();
            var sandbox = await sandboxes.CreateAsync(ApiKeyMiddleware.Caller(context), new NewSandbox
            {
                Image = body.Image,
                Snapshot = body.Snapshot,
                Volumes = body.VolumeMounts?.Select(v => new SandboxVolume(v.Name, v.Path, v.ReadOnly ?? false)).ToList(),
                Timers = body.Timers?.ToTimers(),
                Cpu = body.Cpu,
                MemoryMiB = body.MemoryMiB,
                DiskMiB = body.DiskMiB,
                MaxProcesses = body.MaxProcesses,
                TimeoutSeconds = body.TimeoutSeconds,
                Env = body.Env,
                Metadata = body.Metadata,
                PublicPorts = body.PublicPorts ?? false,
                Network = body.Network is { } network ? sandboxes.ParseNetwork(network.Internet, network.AllowOut, network.DenyOut, network.Headers) : null,
                Secrets = body.Secrets,
            }, context.RequestAborted);
            return Results.Created($"/v1/sandboxes/{sandbox.Id}", sandbox.ToInfo());
        }).WithName("CreateSandbox").Produces<SandboxInfo>(201).WithSummary("Create a sandbox and wait until it runs.");

        group.MapGet("", (HttpContext context, SandboxService sandboxes, string? state, string? metadata) =>
        {
            var wanted = state is null or "all" ? (SandboxState?)null : WireNames.ParseState(state)
                ?? throw CordonException.Invalid($"state '{state}' is not a sandbox state: use creating, running, paused, stopped, ended or all.");
            var includeEnded = state is "all" || wanted == SandboxState.Ended;
            var list = sandboxes.List(ApiKeyMiddleware.Caller(context), includeEnded, ParseMetadataFilter(metadata))
                .Where(s => wanted is null || s.State == wanted);
            return Results.Ok(list.Select(s => s.ToInfo()).ToList());
        }).WithName("ListSandboxes").Produces<List<SandboxInfo>>().WithSummary("List sandboxes (live ones unless state=all|ended); metadata=k=v,k2=v2 filters.");

        group.MapGet("/{id}", (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok(sandboxes.Get(ApiKeyMiddleware.Caller(context), id).ToInfo()))
            .WithName("GetSandbox").Produces<SandboxInfo>();

        group.MapDelete("/{id}", async (string id, HttpContext context, SandboxService sandboxes) =>
        {
            await sandboxes.DestroyAsync(ApiKeyMiddleware.Caller(context), id, via: null, context.RequestAborted);
            return Results.NoContent();
        }).WithName("DeleteSandbox").Produces(204).WithSummary("Destroy a sandbox; deleting an ended sandbox succeeds too.");

        group.MapGet("/{id}/network", (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok(sandboxes.Get(ApiKeyMiddleware.Caller(context), id).Network.ToWire()))
            .WithName("GetSandboxNetwork").Produces<NetworkPolicy>().WithSummary("What the sandbox's traffic may reach.");

        group.MapPut("/{id}/network", async (string id, NetworkPolicy policy, HttpContext context, SandboxService sandboxes) =>
        {
            var sandbox = await sandboxes.SetNetworkAsync(ApiKeyMiddleware.Caller(context), id,
                sandboxes.ParseNetwork(policy.Internet, policy.AllowOut, policy.DenyOut, policy.Headers), via: null, context.RequestAborted);
            return Results.Ok(sandbox.Network.ToWire());
        }).WithName("SetSandboxNetwork").Produces<NetworkPolicy>()
            .WithSummary("Replace what the running sandbox's traffic may reach; open connections the new policy forbids are closed.");

        group.MapPost("/{id}/pause", async (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok((await sandboxes.PauseAsync(ApiKeyMiddleware.Caller(context), id, context.RequestAborted)).ToInfo()))
            .WithName("PauseSandbox").Produces<SandboxInfo>().WithSummary("Freeze every process where it stands (memory kept); resume takes ~2 ms.");

        group.MapPost("/{id}/resume", async (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok((await sandboxes.ResumeAsync(ApiKeyMiddleware.Caller(context), id, context.RequestAborted)).ToInfo()))
            .WithName("ResumeSandbox").Produces<SandboxInfo>().WithSummary("Thaw a paused sandbox (or start a stopped one); its timeout restarts.");

        group.MapPost("/{id}/stop", async (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok((await sandboxes.StopAsync(ApiKeyMiddleware.Caller(context), id, via: null, context.RequestAborted)).ToInfo()))
            .WithName("StopSandbox").Produces<SandboxInfo>()
            .WithSummary("End every process and keep the file system; no CPU or memory is held until it starts again.");

        group.MapPost("/{id}/start", async (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok((await sandboxes.StartAsync(ApiKeyMiddleware.Caller(context), id, via: null, context.RequestAborted)).ToInfo()))
            .WithName("StartSandbox").Produces<SandboxInfo>().WithSummary("Start a stopped sandbox again in the files it kept (or resume a paused one).");

        group.MapPost("/{id}/timeout", (string id, SetTimeoutRequest request, HttpContext context, SandboxService sandboxes)
            => Results.Ok(sandboxes.SetTimeout(ApiKeyMiddleware.Caller(context), id, request.TimeoutSeconds).ToInfo()))
            .WithName("SetSandboxTimeout").Produces<SandboxInfo>();

        group.MapPatch("/{id}", (string id, SandboxTimersInfo timers, HttpContext context, SandboxService sandboxes)
            => Results.Ok(sandboxes.SetTimers(ApiKeyMiddleware.Caller(context), id, timers.ToChange()).ToInfo()))
            .WithName("SetSandboxTimers").Produces<SandboxInfo>()
            .WithSummary("Change its timers: timeoutSeconds, onTimeout, idleTimeoutSeconds, onIdle, autoResume, stoppedRetentionSeconds.");

        group.MapPost("/{id}/snapshots", async (string id, CreateSnapshotRequest? request, HttpContext context, SandboxService sandboxes) =>
        {
            var snapshot = await sandboxes.SnapshotAsync(ApiKeyMiddleware.Caller(context), id, request?.Name, via: null, context.RequestAborted);
            return Results.Created($"/v1/snapshots/{snapshot.Id}", snapshot.ToInfo(sandboxes.SnapshotUsers(snapshot.Id)));
        }).WithName("SnapshotSandbox").Produces<SnapshotInfo>(201)
            .WithSummary("Save the sandbox's file system as a named snapshot (it keeps running; frozen only for the few ms the clone takes).");

        group.MapPost("/{id}/fork", async (string id, ForkRequest? request, HttpContext context, SandboxService sandboxes) =>
        {
            var forks = await sandboxes.ForkAsync(ApiKeyMiddleware.Caller(context), id, request?.Count ?? 1, request?.TimeoutSeconds, via: null, context.RequestAborted);
            return Results.Ok(forks.Select(f => new ForkResult
            {
                Sandbox = f.Sandbox?.ToInfo(),
                Error = f.Error?.Message,
                Code = f.Error is { } error ? ErrorCodes.Name(error.Code) : null,
            }).ToList());
        }).WithName("ForkSandbox").Produces<List<ForkResult>>()
            .WithSummary("Make new sandboxes from the sandbox's file system as it is now, with its settings; each is independent afterwards.");

        group.MapGet("/{id}/events", async (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok((await sandboxes.EventsAsync(ApiKeyMiddleware.Caller(context), id, context.RequestAborted)).ToList()))
            .WithName("GetSandboxEvents").Produces<List<SandboxEvent>>();

        group.MapGet("/{id}/metrics", async (string id, HttpContext context, SandboxService sandboxes)
            => Results.Ok(await sandboxes.MetricsAsync(ApiKeyMiddleware.Caller(context), id, context.RequestAborted)))
            .WithName("GetSandboxMetrics").Produces<SandboxMetrics>();

        group.MapPost("/{id}/exec", ExecAsync).WithName("Exec").Produces<ExecResult>()
            .WithSummary("Run a command. With 'Accept: application/x-ndjson' the events (started, stdout, stderr, exit) stream as they happen.");

        // Ports: HTTP and WebSockets to a server inside the sandbox, carried by its agent.
        group.Map("/{id}/ports/{port:int}/{**rest}", async (string id, int port, string? rest, HttpContext context, SandboxService sandboxes, SandboxPortProxy proxy) =>
        {
            var sandbox = sandboxes.Get(ApiKeyMiddleware.Caller(context), id);
            if (port is < 1 or > 65535)
            {
                throw CordonException.Invalid($"port {port} is not a TCP port (1-65535).");
            }

            context.Request.Path = "/" + rest;
            if (await proxy.ForwardAsync(context, sandbox.Id, port, cookiePath: $"/v1/sandboxes/{sandbox.Id}/ports/{port}/") is { } failure)
            {
                throw new CordonException(ErrorCode.PortUnreachable, failure) { Subject = id };
            }
        }).WithName("ForwardToPort").ExcludeFromDescription();

        MapFiles(group);
        MapSnapshots(app);
    }

    private static void MapSnapshots(IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/snapshots").WithTags("Snapshots");
        group.MapGet("", (string? sandboxId, HttpContext context, SandboxService sandboxes)
            => Results.Ok(sandboxes.WithUsers(sandboxes.ListSnapshots(ApiKeyMiddleware.Caller(context), sandboxId)).Select(s => s.Snapshot.ToInfo(s.Users)).ToList()))
            .WithName("ListSnapshots").Produces<List<SnapshotInfo>>().WithSummary("Your snapshots, oldest first; sandboxId= filters by the sandbox they were taken of.");

        group.MapGet("/{id}", (string id, HttpContext context, SandboxService sandboxes) =>
        {
            var snapshot = sandboxes.GetSnapshot(ApiKeyMiddleware.Caller(context), id);
            return Results.Ok(snapshot.ToInfo(sandboxes.SnapshotUsers(snapshot.Id)));
        }).WithName("GetSnapshot").Produces<SnapshotInfo>().WithSummary("A snapshot, by id or name.");

        group.MapDelete("/{id}", async (string id, HttpContext context, SandboxService sandboxes) =>
        {
            await sandboxes.DeleteSnapshotAsync(ApiKeyMiddleware.Caller(context), id, context.RequestAborted);
            return Results.NoContent();
        }).WithName("DeleteSnapshot").Produces(204).WithSummary("Delete a snapshot (by id or name); refused (409) while sandboxes or snapshots start from it.");
    }

    /// <summary>Every file endpoint takes <c>?user=</c>: the operation is done with that user's rights in the
    /// sandbox (the sandbox's default user when absent).</summary>
    private static void MapFiles(RouteGroupBuilder group)
    {
        group.MapPut("/{id}/files", async (string id, string? path, string? mode, string? user, HttpContext context, SandboxService sandboxes, IOptions<CordonOptions> options) =>
        {
            RequestBody.AllowUpTo(context, options.Value.MaxUploadBytes);
            var entry = await sandboxes.WriteFileAsync(ApiKeyMiddleware.Caller(context), id, path, context.Request.Body, ParseMode(mode), user, context.RequestAborted);
            return Results.Ok(entry);
        }).WithName("WriteFile").Accepts<Stream>("application/octet-stream", "*/*").Produces<FileEntry>()
            .WithSummary("Write a file from the raw request body (streamed, any size); it replaces the old file only once complete.");

        group.MapGet("/{id}/files", async (string id, string? path, string? user, HttpContext context, SandboxService sandboxes) =>
        {
            var file = await sandboxes.ReadFileAsync(ApiKeyMiddleware.Caller(context), id, path, user, context.RequestAborted);
            return Results.Stream(file, "application/octet-stream", fileDownloadName: null, enableRangeProcessing: false);
        }).WithName("ReadFile").Produces<Stream>(200, "application/octet-stream");

        group.MapDelete("/{id}/files", async (string id, string? path, string? user, HttpContext context, SandboxService sandboxes) =>
        {
            await sandboxes.RemoveFileAsync(ApiKeyMiddleware.Caller(context), id, path, user, context.RequestAborted);
            return Results.NoContent();
        }).WithName("RemoveFile").Produces(204);

        group.MapGet("/{id}/files/list", async (string id, string? path, int? depth, string? user, HttpContext context, SandboxService sandboxes) =>
        {
            var entries = await sandboxes.ListFilesAsync(ApiKeyMiddleware.Caller(context), id, path, depth ?? 1, user, context.RequestAborted);
            return Results.Ok(new FileListing(SandboxPaths.Normalize(path!), entries));
        }).WithName("ListFiles").Produces<FileListing>();

        group.MapGet("/{id}/files/stat", async (string id, string? path, string? user, HttpContext context, SandboxService sandboxes)
            => Results.Ok(await sandboxes.StatFileAsync(ApiKeyMiddleware.Caller(context), id, path, user, context.RequestAborted)))
            .WithName("StatFile").Produces<FileEntry>();

        group.MapPost("/{id}/files/mkdir", async (string id, string? path, string? user, HttpContext context, SandboxService sandboxes)
            => Results.Ok(await sandboxes.MakeDirAsync(ApiKeyMiddleware.Caller(context), id, path, user, context.RequestAborted)))
            .WithName("MakeDirectory").Produces<FileEntry>();

        group.MapPost("/{id}/files/rename", async (string id, RenameRequestBody body, string? user, HttpContext context, SandboxService sandboxes)
            => Results.Ok(await sandboxes.RenameFileAsync(ApiKeyMiddleware.Caller(context), id, body.From, body.To, user, context.RequestAborted)))
            .WithName("RenameFile").Produces<FileEntry>();
    }

    private static async Task<IResult> ExecAsync(string id, ExecRequestBody body, HttpContext context, SandboxService sandboxes)
    {
        var caller = ApiKeyMiddleware.Caller(context);
        var spec = ToSpec(body);
        if (!Ndjson.Requested(context))
        {
            return Results.Ok((await sandboxes.ExecAsync(caller, id, spec, body.Stdin, context.RequestAborted)).ToResult());
        }

        var command = await sandboxes.StartCommandAsync(caller, id, spec with { Stdin = body.Stdin is not null }, context.RequestAborted);
        return new NdjsonCommandResult(command, body.Stdin);
    }

    /// <summary>REST's <c>cmd</c>: an argv array, or one shell string.</summary>
    internal static CommandSpec ToSpec(ExecRequestBody body)
    {
        var spec = body.Cmd.ValueKind switch
        {
            JsonValueKind.String => CommandSpec.Shell(body.Cmd.GetString()!),
            JsonValueKind.Array when body.Cmd.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)
                => CommandSpec.Program([.. body.Cmd.EnumerateArray().Select(e => e.GetString()!)]),
            _ => throw CordonException.Invalid("cmd must be an array of strings (argv, e.g. [\"ls\", \"-l\"]) or one shell string (e.g. \"ls -l | wc -l\")."),
        };
        return spec with { Env = body.Env, Cwd = body.Cwd, User = body.User, TimeoutSeconds = body.TimeoutSeconds };
    }

    private static int? ParseMode(string? mode)
    {
        if (string.IsNullOrEmpty(mode))
        {
            return null;
        }

        try
        {
            var value = Convert.ToInt64(mode, 8);
            return value is >= 0 and <= 0xFFF ? (int)value : throw CordonException.Invalid($"mode {mode} is out of range: permissions go from 0 to 7777 (octal).");
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
        {
            throw CordonException.Invalid($"mode '{(mode.Length <= 20 ? mode : mode[..20] + "…")}' is not an octal permission such as 644 or 755.");
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
