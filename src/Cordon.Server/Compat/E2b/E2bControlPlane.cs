using System.Text.Json;
using System.Text.Json.Serialization;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Cordon.Server.Shapes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Compat.E2b;

/// <summary>E2B's control plane (what <c>E2B_API_URL</c> points at), as the official SDKs call it: create, connect,
/// get, list, kill, set timeout, pause, metrics. A thin adapter over <see cref="SandboxService"/>; errors are
/// E2B's <c>{"code": status, "message": …}</c>, since the SDK reads the code from the body.</summary>
public static class E2bControlPlane
{
    /// <summary>The envd version Cordon answers as: the SDK enables features by it (see docs/e2b.md).</summary>
    public const string EnvdVersion = "0.5.7";

    /// <summary>Metadata that remembers which E2B template a sandbox was created from.</summary>
    public const string TemplateMetadata = "e2b.template";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public static void MapE2bControlPlane(this IEndpointRouteBuilder app)
    {
        foreach (var prefix in (string[])["/sandboxes", "/v2/sandboxes"])
        {
            var group = app.MapGroup(prefix).ExcludeFromDescription();
            group.MapPost("", CreateAsync);
            group.MapGet("", List);
            group.MapPost("/{id}/connect", ConnectAsync);
            group.MapGet("/{id}", Get);
            group.MapDelete("/{id}", KillAsync);
            group.MapPost("/{id}/timeout", SetTimeoutAsync);
            group.MapPost("/{id}/pause", PauseAsync);
            group.MapGet("/{id}/metrics", MetricsAsync);
            group.MapPut("/{id}/network", UpdateNetworkAsync);
            group.MapPost("/{id}/snapshots", CreateSnapshotAsync);
            group.MapPost("/{id}/fork", ForkAsync);
            group.MapPost("/{id}/resume", ConnectAsync);
        }

        app.MapGet("/snapshots", ListSnapshots).ExcludeFromDescription();
        app.MapDelete("/templates/{id}", DeleteTemplateAsync).ExcludeFromDescription();

        app.MapE2bSecrets();
        app.MapE2bVolumes();
        app.MapE2bTemplates();
    }

    private static Task<IResult> CreateAsync(HttpContext context, SandboxService sandboxes, SandboxTokens tokens, IOptions<CordonOptions> options) => GuardAsync(async () =>
    {
        var body = await ReadAsync<CreateBody>(context) ?? new CreateBody();
        var caller = ApiKeyMiddleware.Caller(context);
        var template = string.IsNullOrEmpty(body.TemplateId) ? "base" : body.TemplateId;
        var metadata = new Dictionary<string, string>(body.Metadata ?? [], StringComparer.Ordinal) { [TemplateMetadata] = template };

        // A snapshot is a template on E2B: Sandbox.create(snapshotId) starts from it.
        var snapshot = sandboxes.FindSnapshot(caller, template);
        var sandbox = await sandboxes.CreateAsync(caller, new NewSandbox
        {
            Image = snapshot is null ? ImageFor(template, options.Value) : null,
            Snapshot = snapshot?.Id,
            Timers = new SandboxTimers
            {
                // autoPause: the timeout pauses instead of killing; without memory it stops (the files kept).
                OnTimeout = body.AutoPause is true ? (body.AutoPauseMemory is false ? TimerAction.Stop : TimerAction.Pause) : TimerAction.Destroy,
                AutoResume = body.AutoResume?.Enabled ?? false,
            },
            Volumes = body.VolumeMounts?.Select(v => new SandboxVolume(v.Name ?? "", v.Path ?? "")).ToList(),
            TimeoutSeconds = body.Timeout ?? 300,
            Env = body.EnvVars,
            Metadata = metadata,
            PublicPorts = body.Network?.AllowPublicTraffic ?? true,
            // Older SDKs send allow_internet_access: true always: that alone is the server's default.
            Network = body.AllowInternetAccess is false || body.Network?.AllowOut is not null || body.Network?.DenyOut is not null || body.Network?.Rules is not null
                ? PolicyOf(sandboxes, body.AllowInternetAccess, body.Network)
                : null,
        }, context.RequestAborted);
        return Results.Json(Describe(sandbox, tokens), Json, statusCode: 201);
    });

    /// <summary><c>PUT /sandboxes/{id}/network</c>: the whole egress configuration is replaced (omitted fields are
    /// cleared, as on E2B).</summary>
    private static Task<IResult> UpdateNetworkAsync(string id, HttpContext context, SandboxService sandboxes) => GuardAsync(async () =>
    {
        var body = await ReadAsync<UpdateNetworkBody>(context) ?? new UpdateNetworkBody();
        await sandboxes.SetNetworkAsync(ApiKeyMiddleware.Caller(context), id,
            PolicyOf(sandboxes, body.AllowInternetAccess, new NetworkBody { AllowOut = body.AllowOut, DenyOut = body.DenyOut, Rules = body.Rules }), "the E2B API", context.RequestAborted);
        return Results.NoContent();
    });

    /// <summary>E2B's egress settings as a policy: <c>allow_internet_access: false</c> is <c>denyOut: ["0.0.0.0/0"]</c>,
    /// and a deny of all traffic is the same as no internet (allow rules still beat it). <c>rules</c> are header
    /// transforms per host (values may hold <c>${e2b.secrets.NAME}</c>): the policy's header rules, the transforms of
    /// one host's list taken together.</summary>
    private static Network.EgressPolicy PolicyOf(SandboxService sandboxes, bool? allowInternetAccess, NetworkBody? network)
    {
        Dictionary<string, IReadOnlyDictionary<string, string>>? headers = null;
        foreach (var (host, list) in network?.Rules ?? [])
        {
            var set = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var rule in list ?? [])
            {
                foreach (var (name, value) in rule?.Transform?.Headers ?? [])
                {
                    set[name] = value;
                }
            }

            if (set.Count > 0)
            {
                (headers ??= [])[host] = set;
            }
        }

        if (network?.EgressProxy is { ValueKind: not JsonValueKind.Null })
        {
            throw CordonException.Invalid("network.egressProxy is not supported by this Cordon server; remove it.");
        }

        var deny = (network?.DenyOut ?? []).ToList();
        var internet = allowInternetAccess ?? true;
        if (deny.RemoveAll(r => r.Trim() is "0.0.0.0/0") > 0)
        {
            internet = false;
        }

        return sandboxes.ParseNetwork(internet, network?.AllowOut, deny, headers);
    }

    private static Task<IResult> ConnectAsync(string id, HttpContext context, SandboxService sandboxes, SandboxTokens tokens) => GuardAsync(async () =>
    {
        var caller = ApiKeyMiddleware.Caller(context);
        var body = await ReadAsync<ConnectBody>(context);
        var sandbox = sandboxes.Get(caller, id);
        var resumed = false;
        if (sandbox.State is SandboxState.Paused or SandboxState.Stopped)
        {
            sandbox = await sandboxes.StartAsync(caller, id, "the E2B API", context.RequestAborted);
            resumed = true;
        }
        else if (sandbox.State != SandboxState.Running)
        {
            throw NotFound(id);
        }

        if (body?.Timeout is > 0)
        {
            sandbox = sandboxes.SetTimeout(caller, id, body.Timeout.Value);
        }

        return Results.Json(Describe(sandbox, tokens), Json, statusCode: resumed ? 201 : 200);
    });

    private static Task<IResult> Get(string id, HttpContext context, SandboxService sandboxes) => GuardAsync(() =>
    {
        var sandbox = sandboxes.Get(ApiKeyMiddleware.Caller(context), id);
        return Task.FromResult(sandbox.State == SandboxState.Ended ? throw NotFound(id) : Results.Json(Detail(sandbox), Json));
    });

    /// <summary>As on E2B, a sandbox that ended is simply not found.</summary>
    private static CordonException NotFound(string id) => new(ErrorCode.SandboxNotFound, $"Sandbox {id} not found.") { Subject = id };

    private static Task<IResult> List(HttpContext context, SandboxService sandboxes) => GuardAsync(() =>
    {
        var query = context.Request.Query;
        var states = query["state"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(WireNames.ParseState).ToList();
        var metadata = ParseMetadata(query["metadata"].ToString());
        var records = sandboxes.List(ApiKeyMiddleware.Caller(context), includeEnded: false, metadata)
            .Where(s => s.State is SandboxState.Running or SandboxState.Paused or SandboxState.Stopped)
            .Where(s => states.Count == 0 || states.Contains(E2bState(s.State)))
            .OrderBy(s => s.CreatedAt);
        var ordered = (query["order"] == "desc" ? records.Reverse() : records).ToList();

        // Pages: nextToken is the offset of the page's first sandbox; X-Next-Token says there is another page.
        var limit = int.TryParse(query["limit"], out var l) && l > 0 ? Math.Min(l, 1000) : 1000;
        var offset = int.TryParse(query["nextToken"], out var o) && o > 0 ? o : 0;
        if (offset + limit < ordered.Count)
        {
            context.Response.Headers["X-Next-Token"] = (offset + limit).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return Task.FromResult(Results.Json(ordered.Skip(offset).Take(limit).Select(Detail).ToList(), Json));
    });

    private static Task<IResult> KillAsync(string id, HttpContext context, SandboxService sandboxes) => GuardAsync(async () =>
    {
        var caller = ApiKeyMiddleware.Caller(context);
        if (sandboxes.Get(caller, id).State == SandboxState.Ended)
        {
            throw NotFound(id);
        }

        await sandboxes.DestroyAsync(caller, id, via: "the E2B API", context.RequestAborted);
        return Results.NoContent();
    });

    private static Task<IResult> SetTimeoutAsync(string id, HttpContext context, SandboxService sandboxes) => GuardAsync(async () =>
    {
        var body = await ReadAsync<ConnectBody>(context);
        if (body?.Timeout is not > 0)
        {
            throw CordonException.Invalid("timeout must be a positive number of seconds.");
        }

        sandboxes.SetTimeout(ApiKeyMiddleware.Caller(context), id, body.Timeout.Value);
        return Results.NoContent();
    });

    /// <summary><c>pause({keepMemory: false})</c> sends <c>memory: false</c>: the files are kept, the processes end
    /// (Cordon's stop); otherwise the processes freeze in memory.</summary>
    private static Task<IResult> PauseAsync(string id, HttpContext context, SandboxService sandboxes) => GuardAsync(async () =>
    {
        var caller = ApiKeyMiddleware.Caller(context);
        var body = await ReadAsync<PauseBody>(context);
        if (sandboxes.Get(caller, id).State is SandboxState.Paused or SandboxState.Stopped)
        {
            throw new CordonException(ErrorCode.SandboxPaused, $"Sandbox {id} is already paused.") { Subject = id };
        }

        if (body?.Memory is false)
        {
            await sandboxes.StopAsync(caller, id, "the E2B API", context.RequestAborted);
        }
        else
        {
            await sandboxes.PauseAsync(caller, id, context.RequestAborted, "the E2B API");
        }

        return Results.NoContent();
    });

    /// <summary><c>createSnapshot({name})</c>: the snapshot's id is what <c>Sandbox.create</c> takes.</summary>
    private static Task<IResult> CreateSnapshotAsync(string id, HttpContext context, SandboxService sandboxes) => GuardAsync(async () =>
    {
        var body = await ReadAsync<SnapshotBody>(context);
        var snapshot = await sandboxes.SnapshotAsync(ApiKeyMiddleware.Caller(context), id, body?.Name, "the E2B API", context.RequestAborted);
        return Results.Json(SnapshotOf(snapshot), Json, statusCode: 201);
    });

    private static object SnapshotOf(Snapshots.SnapshotRecord snapshot) => new { snapshotID = snapshot.Id, names = new[] { snapshot.Name ?? snapshot.Id } };

    private static Task<IResult> ListSnapshots(HttpContext context, SandboxService sandboxes) => GuardAsync(() =>
    {
        var query = context.Request.Query;
        var name = query["name"].ToString();
        var all = sandboxes.ListSnapshots(ApiKeyMiddleware.Caller(context), query["sandboxID"].ToString() is { Length: > 0 } sandboxId ? sandboxId : null)
            .Where(s => name.Length == 0 || s.Name == name)
            .ToList();
        var limit = int.TryParse(query["limit"], out var l) && l > 0 ? Math.Min(l, 1000) : 100;
        var offset = int.TryParse(query["nextToken"], out var o) && o > 0 ? o : 0;
        if (offset + limit < all.Count)
        {
            context.Response.Headers["X-Next-Token"] = (offset + limit).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return Task.FromResult(Results.Json(all.Skip(offset).Take(limit).Select(SnapshotOf).ToList(), Json));
    });

    /// <summary><c>deleteSnapshot(id)</c> and <c>Template.delete</c>: a snapshot (a template on E2B) of the caller's, or,
    /// for an admin key, a built template (an image of that name).</summary>
    private static Task<IResult> DeleteTemplateAsync(string id, HttpContext context, SandboxService sandboxes, Images.ImageService images) => GuardAsync(async () =>
    {
        var caller = ApiKeyMiddleware.Caller(context);
        if (sandboxes.FindSnapshot(caller, id) is not null)
        {
            await sandboxes.DeleteSnapshotAsync(caller, id, context.RequestAborted);
            return Results.NoContent();
        }

        if (images.Find(caller, id) is not null)
        {
            images.Delete(caller, id, sandboxes.ImagesInUse);
            return Results.NoContent();
        }

        throw new CordonException(ErrorCode.SnapshotNotFound, $"Template {id} not found.") { Subject = id };
    });

    /// <summary><c>fork({count, timeout})</c>: one entry per fork, the sandbox as a create describes it or E2B's error.</summary>
    private static Task<IResult> ForkAsync(string id, HttpContext context, SandboxService sandboxes, SandboxTokens tokens) => GuardAsync(async () =>
    {
        var body = await ReadAsync<ForkBody>(context);
        var forks = await sandboxes.ForkAsync(ApiKeyMiddleware.Caller(context), id, body?.Count ?? 1, body?.Timeout, "the E2B API", context.RequestAborted);
        return Results.Json(forks.Select(f => f.Sandbox is { } sandbox
            ? (object)new { sandbox = Describe(sandbox, tokens) }
            : new { error = new { code = E2bErrors.StatusOf(f.Error!.Code), message = f.Error.Message } }).ToList(), Json);
    });

    private static Task<IResult> MetricsAsync(string id, HttpContext context, SandboxService sandboxes) => GuardAsync(async () =>
    {
        var caller = ApiKeyMiddleware.Caller(context);
        var sandbox = sandboxes.Get(caller, id);
        var metrics = await sandboxes.MetricsAsync(caller, id, context.RequestAborted);
        var now = DateTimeOffset.UtcNow;
        var uptime = Math.Max(1, (now - sandbox.CreatedAt).TotalSeconds);
        var metric = new
        {
            timestamp = now,
            timestampUnix = now.ToUnixTimeSeconds(),
            cpuCount = sandbox.Cpu,
            cpuUsedPct = Math.Round(metrics.CpuSeconds / uptime / Math.Max(sandbox.Cpu, 0.01) * 100, 2),
            memUsed = metrics.MemoryBytes,
            memTotal = metrics.MemoryLimitBytes,
            memCache = 0,
            diskUsed = 0,
            diskTotal = sandbox.DiskMiB * 1024 * 1024,
        };
        return Results.Json(new[] { metric }, Json);
    });

    /// <summary>E2B's templates <c>base</c> and <c>code-interpreter-v1</c> are Cordon's default image; any other
    /// template name is an image name.</summary>
    internal static string ImageFor(string template, CordonOptions options)
        => template is "base" or "code-interpreter-v1" or "code-interpreter" ? options.DefaultImage : template;

    private static object Describe(Sandbox sandbox, SandboxTokens tokens) => new
    {
        sandboxID = sandbox.Id,
        templateID = Template(sandbox),
        alias = Template(sandbox),
        clientID = "cordon",
        envdVersion = EnvdVersion,
        envdAccessToken = tokens.Envd(sandbox.Id, sandbox.Owner),

        // Always given, so the SDK sends it to the code interpreter's /contexts (which it calls without the envd
        // token); the sandbox's web ports ask for it only when the sandbox's traffic is not public.
        trafficAccessToken = tokens.Traffic(sandbox.Id, sandbox.Owner),
        domain = (string?)null,
    };

    private static object Detail(Sandbox sandbox) => new
    {
        sandboxID = sandbox.Id,
        templateID = Template(sandbox),
        alias = Template(sandbox),
        clientID = "cordon",
        metadata = sandbox.Metadata.Where(m => m.Key != TemplateMetadata).ToDictionary(),
        startedAt = sandbox.CreatedAt,
        endAt = sandbox.ExpiresAt ?? sandbox.CreatedAt.AddSeconds(sandbox.TimeoutSeconds),
        state = WireNames.Of(E2bState(sandbox.State)),
        cpuCount = sandbox.Cpu,
        memoryMB = sandbox.MemoryMiB,
        diskSizeMB = sandbox.DiskMiB,
        envdVersion = EnvdVersion,
        domain = (string?)null,
        lifecycle = new { onTimeout = sandbox.Timers.OnTimeout == TimerAction.Destroy ? "kill" : "pause", autoResume = sandbox.Timers.AutoResume },
        allowInternetAccess = sandbox.Network.Internet,
        network = new
        {
            allowPublicTraffic = sandbox.PublicPorts,
            allowOut = sandbox.Network.AllowText,
            denyOut = sandbox.Network.Internet ? sandbox.Network.DenyText : [.. sandbox.Network.DenyText, "0.0.0.0/0"],
            rules = sandbox.Network.HeadersText.ToDictionary(h => h.Key, h => new[] { new { transform = new { headers = h.Value } } }),
        },
        volumeMounts = sandbox.Volumes.Select(v => new { name = v.Volume, path = v.Path }).ToList(),
    };

    /// <summary>E2B knows running and paused: a stopped sandbox (its files kept) is a paused one there.</summary>
    private static SandboxState E2bState(SandboxState state) => state == SandboxState.Stopped ? SandboxState.Paused : state;

    private static string Template(Sandbox sandbox) => sandbox.Metadata.GetValueOrDefault(TemplateMetadata) ?? sandbox.Image;

    /// <summary>The SDK sends metadata as a query string inside the query string: <c>metadata=a%3Db%26k%3Dv</c>.</summary>
    private static Dictionary<string, string>? ParseMetadata(string metadata)
    {
        if (string.IsNullOrEmpty(metadata))
        {
            return null;
        }

        var filter = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in metadata.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
            filter[key] = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
        }

        return filter;
    }

    internal static async Task<T?> ReadAsync<T>(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        var text = await reader.ReadToEndAsync(context.RequestAborted);
        if (string.IsNullOrWhiteSpace(text))
        {
            return default;
        }

        try
        {
            return JsonSerializer.Deserialize<T>(text, Json);
        }
        catch (JsonException ex)
        {
            throw CordonException.Invalid($"The request body is not valid JSON: {JsonFaults.Describe(ex)}.");
        }
    }

    /// <summary>Cordon's errors in E2B's shape.</summary>
    internal static async Task<IResult> GuardAsync(Func<Task<IResult>> handler)
    {
        try
        {
            return await handler();
        }
        catch (CordonException ex)
        {
            return E2bErrors.From(ex);
        }
    }

    private sealed record CreateBody
    {
        [JsonPropertyName("templateID")]
        public string? TemplateId { get; init; }

        public int? Timeout { get; init; }

        public Dictionary<string, string>? Metadata { get; init; }

        public Dictionary<string, string>? EnvVars { get; init; }

        public NetworkBody? Network { get; init; }

        [JsonPropertyName("allow_internet_access")]
        public bool? AllowInternetAccess { get; init; }

        public bool? AutoPause { get; init; }

        public bool? AutoPauseMemory { get; init; }

        public AutoResumeBody? AutoResume { get; init; }

        public List<VolumeMountBody>? VolumeMounts { get; init; }
    }

    private sealed record VolumeMountBody
    {
        public string? Name { get; init; }

        public string? Path { get; init; }
    }

    private sealed record AutoResumeBody
    {
        public bool? Enabled { get; init; }
    }

    private sealed record PauseBody
    {
        public bool? Memory { get; init; }
    }

    private sealed record SnapshotBody
    {
        public string? Name { get; init; }
    }

    private sealed record ForkBody
    {
        public int? Timeout { get; init; }

        public int? Count { get; init; }
    }

    private sealed record NetworkBody
    {
        /// <summary>E2B's default is true: the sandbox's ports answer anyone who knows its address.</summary>
        public bool? AllowPublicTraffic { get; init; }

        public List<string>? AllowOut { get; init; }

        public List<string>? DenyOut { get; init; }

        /// <summary>Per host, header transforms.</summary>
        public Dictionary<string, List<RuleBody?>?>? Rules { get; init; }

        public JsonElement? EgressProxy { get; init; }
    }

    private sealed record RuleBody
    {
        public TransformBody? Transform { get; init; }
    }

    private sealed record TransformBody
    {
        public Dictionary<string, string>? Headers { get; init; }
    }

    private sealed record UpdateNetworkBody
    {
        public List<string>? AllowOut { get; init; }

        public List<string>? DenyOut { get; init; }

        public Dictionary<string, List<RuleBody?>?>? Rules { get; init; }

        [JsonPropertyName("allow_internet_access")]
        public bool? AllowInternetAccess { get; init; }
    }

    private sealed record ConnectBody
    {
        public int? Timeout { get; init; }
    }
}
