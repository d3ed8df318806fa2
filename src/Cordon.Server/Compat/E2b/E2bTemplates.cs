using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Http;
using Cordon.Server.Images;
using Cordon.Server.Images.Builds;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Compat.E2b;

/// <summary>E2B's Template SDK (<c>Template.build</c>, <c>buildInBackground</c>, <c>getBuildStatus</c>,
/// <c>exists</c>, tags): its steps become a Dockerfile and its uploads a build context for <see cref="ImageBuilder"/>;
/// a template is an image of that name, which <c>Sandbox.create(name)</c> starts from.</summary>
public static class E2bTemplates
{
    /// <summary>Where upload links point: authorised by their signature, not by an API key (the SDK sends none there).</summary>
    public const string UploadPrefix = "/template-uploads";

    /// <summary>How long an upload link works.</summary>
    private static readonly TimeSpan UploadLinkLife = TimeSpan.FromHours(1);

    private const string DockerfileName = ".e2b-template.Dockerfile";

    private const int MaxLogEntries = 100;

    public static void MapE2bTemplates(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v3/templates", RequestBuildAsync).ExcludeFromDescription();
        app.MapGet("/templates/{templateID}/files/{hash}", UploadLink).ExcludeFromDescription();
        app.MapPut(UploadPrefix + "/{hash}", UploadAsync).ExcludeFromDescription();
        app.MapPost("/v2/templates/{templateID}/builds/{buildID}", TriggerAsync).ExcludeFromDescription();
        app.MapGet("/templates/{templateID}/builds/{buildID}/status", Status).ExcludeFromDescription();
        app.MapGet("/templates/aliases/{alias}", Alias).ExcludeFromDescription();
        app.MapGet("/templates", List).ExcludeFromDescription();
        app.MapPost("/templates/tags", AssignTags).ExcludeFromDescription();
        app.MapDelete("/templates/tags", RemoveTagsAsync).ExcludeFromDescription();
        app.MapGet("/templates/{templateID}/tags", ListTags).ExcludeFromDescription();
    }

    /// <summary><c>POST /v3/templates</c>: a build of a template name (<c>name</c> or <c>name:tag</c>) is registered;
    /// its steps come with the trigger.</summary>
    private static Task<IResult> RequestBuildAsync(HttpContext context, E2bTemplateBuilds builds) => E2bControlPlane.GuardAsync(async () =>
    {
        var caller = ApiKeyMiddleware.Caller(context);
        var body = await E2bControlPlane.ReadAsync<BuildRequestBody>(context) ?? throw CordonException.Invalid("The body must name the template: {\"name\": \"my-template\"}.");
        var name = body.Name ?? body.Alias ?? throw CordonException.Invalid("name is required: the template's name, such as my-template or my-template:v1.");
        ImageService.ValidateName(name);
        foreach (var tag in body.Tags ?? [])
        {
            ImageService.ValidateName(BaseName(name) + ":" + tag);
        }

        var build = new TemplateBuild(name, Guid.NewGuid().ToString(), caller, body.Tags ?? []);
        builds.Add(build);
        return Results.Json(new
        {
            templateID = build.TemplateId,
            buildID = build.BuildId,
            names = (string[])[name],
            tags = build.Tags,
            aliases = (string[])[name],
            @public = false,
        }, E2bControlPlane.Json, statusCode: 202);
    });

    /// <summary>Whether a COPY's files (by the SDK's hash of them) are here; if not, where to PUT them.</summary>
    private static IResult UploadLink(string templateID, string hash, HttpContext context, TemplateFiles files, SandboxTokens tokens)
    {
        var caller = ApiKeyMiddleware.Caller(context);
        if (!TemplateFiles.IsHash(hash))
        {
            return E2bErrors.Body(400, "The files hash must be 64 lowercase hex digits.");
        }

        if (files.Has(caller.KeyId, hash))
        {
            return Results.Json(new { present = true }, E2bControlPlane.Json);
        }

        var expires = DateTimeOffset.UtcNow.Add(UploadLinkLife).ToUnixTimeSeconds();
        var url = $"{context.Request.Scheme}://{context.Request.Host}{UploadPrefix}/{hash}?key={Uri.EscapeDataString(caller.KeyId)}&expires={expires}&signature={tokens.Upload(hash, caller.KeyId, expires)}";
        return Results.Json(new { present = false, url }, E2bControlPlane.Json);
    }

    /// <summary>The SDK's PUT of a COPY's files (a tar archive, gzip by default), authorised by the link's signature.</summary>
    private static async Task<IResult> UploadAsync(string hash, string? key, long? expires, string? signature, HttpContext context, TemplateFiles files, SandboxTokens tokens, IOptions<CordonOptions> options)
    {
        if (!TemplateFiles.IsHash(hash) || key is null || expires is null || !tokens.IsValidUpload(hash, key, expires.Value, signature))
        {
            return E2bErrors.Body(401, "The upload link is not valid or has expired: ask for a new one (GET /templates/{id}/files/{hash}).");
        }

        RequestBody.AllowUpTo(context, options.Value.MaxUploadBytes);
        try
        {
            await files.SaveAsync(key, hash, context.Request.Body, context.RequestAborted);
        }
        catch (InvalidDataException ex)
        {
            return E2bErrors.Body(413, $"The upload was refused: {ex.Message}.");
        }

        return Results.Ok();
    }

    /// <summary><c>POST /v2/templates/{id}/builds/{buildID}</c>: the steps, as a Dockerfile over the uploaded files,
    /// go to the image builder; answered 202 with an empty body (the SDK reads no JSON here).</summary>
    private static Task<IResult> TriggerAsync(string templateID, string buildID, HttpContext context, E2bTemplateBuilds builds, ImageBuilder builder, TemplateFiles files, ImageService images, IOptions<CordonOptions> options) => E2bControlPlane.GuardAsync(async () =>
    {
        var caller = ApiKeyMiddleware.Caller(context);
        var build = builds.Find(templateID, buildID, caller)
            ?? throw new CordonException(ErrorCode.ImageNotFound, $"No build {buildID} of template {templateID} was requested (POST /v3/templates first).") { Subject = templateID };
        var body = await E2bControlPlane.ReadAsync<TriggerBody>(context) ?? throw CordonException.Invalid("The body must hold the template's steps.");
        var (dockerfile, hashes, pull) = Translate(caller, body, images, options.Value);
        var noCache = body.Force == true || (body.Steps ?? []).Any(s => s.Force == true);

        Stream composed;
        try
        {
            composed = await files.ComposeContextAsync(caller.KeyId, DockerfileName, dockerfile, hashes, context.RequestAborted);
        }
        catch (InvalidDataException ex)
        {
            throw CordonException.Invalid($"The template's files were refused: {ex.Message}. Build again (the SDK uploads what is missing).");
        }

        BuildStarted started;
        await using (composed)
        {
            started = await builder.StartAsync(caller, new BuildRequest
            {
                Name = build.Name,
                Dockerfile = DockerfileName,
                NoCache = noCache,
                StartCmd = string.IsNullOrWhiteSpace(body.StartCmd) ? null : body.StartCmd,
                ReadyCmd = string.IsNullOrWhiteSpace(body.StartCmd) || string.IsNullOrWhiteSpace(body.ReadyCmd) ? null : body.ReadyCmd,
                PullBase = pull,
            }, composed, context.RequestAborted);
        }

        build.Log = started.Log;
        context.Response.ContentLength = 0;
        return Results.StatusCode(202);
    });

    /// <summary>The build's state and its log from <c>logsOffset</c> (at most 100 entries an answer, as E2B).</summary>
    private static IResult Status(string templateID, string buildID, int? logsOffset, HttpContext context, E2bTemplateBuilds builds, ImageService images)
    {
        if (builds.Find(templateID, buildID, ApiKeyMiddleware.Caller(context)) is not { } build)
        {
            return E2bErrors.Body(404, $"No build {buildID} of template {templateID} is known here (builds are known from their request until the server restarts).");
        }

        if (build.Log is not { } log)
        {
            return Results.Json(new { buildID, templateID, status = "waiting", logEntries = Array.Empty<object>(), logs = Array.Empty<string>() }, E2bControlPlane.Json);
        }

        var all = log.Read(0);
        var events = all.Skip(Math.Max(0, logsOffset ?? 0)).Take(MaxLogEntries).ToList();
        var done = all.LastOrDefault(e => e.Type == "done");
        var status = done is null ? "building" : done.Status == ImageStates.Ready ? "ready" : "error";
        if (status == "ready" && !build.Tagged)
        {
            build.Tagged = true;
            foreach (var tag in build.Tags)
            {
                images.Tag(build.Caller, build.Name, BaseName(build.Name) + ":" + tag);
            }
        }

        var error = all.LastOrDefault(e => e.Type == "error");
        return Results.Json(new
        {
            buildID,
            templateID,
            status,
            logEntries = events.Select(e => new { timestamp = e.Time, level = Level(e), message = Line(e), step = e.Step?.ToString(System.Globalization.CultureInfo.InvariantCulture) }).ToList(),
            logs = events.Select(Line).ToList(),
            reason = status == "error" ? new { message = error?.Message ?? done!.Message, step = error?.Step?.ToString(System.Globalization.CultureInfo.InvariantCulture) } : null,
        }, E2bControlPlane.Json);
    }

    /// <summary><c>e2b template list</c>: the images the caller can start from, as templates (its own, and the server's,
    /// which are public: every key's).</summary>
    private static IResult List(HttpContext context, ImageService images)
    {
        var caller = ApiKeyMiddleware.Caller(context);
        return Results.Json(images.List(caller).Where(i => i.Status == ImageStates.Ready).Select(i => new
        {
            templateID = i.Name,
            buildID = Guid.Empty,
            aliases = (string[])[i.Name],
            names = (string[])[i.Name],
            @public = caller.Admin ? !i.Name.Contains('/') : images.Find(ImageService.StoredName(caller, i.Name)) is null, // the server's
            cpuCount = 1,
            memoryMB = 512,
            diskSizeMB = 2048,
            envdVersion = E2bControlPlane.EnvdVersion,
            buildStatus = "ready",
            createdAt = i.CreatedAt,
            updatedAt = i.CreatedAt,
            lastSpawnedAt = (DateTimeOffset?)null,
            spawnCount = 0,
            buildCount = 1,
            createdBy = (object?)null,
        }).ToList(), E2bControlPlane.Json);
    }

    /// <summary><c>Template.exists(name)</c>: 200 when an image (or snapshot) of that name exists, else 404.</summary>
    private static IResult Alias(string alias, HttpContext context, ImageService images, IOptions<CordonOptions> options)
        => images.Find(ApiKeyMiddleware.Caller(context), E2bControlPlane.ImageFor(alias, options.Value)) is { Status: ImageStates.Ready }
            ? Results.Json(new { templateID = alias, @public = false }, E2bControlPlane.Json)
            : E2bErrors.Body(404, $"Template '{alias}' not found.");

    private static Task<IResult> AssignTags(HttpContext context, ImageService images) => E2bControlPlane.GuardAsync(async () =>
    {
        var caller = ApiKeyMiddleware.Caller(context);
        var body = await E2bControlPlane.ReadAsync<TagsBody>(context) ?? throw CordonException.Invalid("The body must name the target and the tags.");
        var target = body.Target ?? throw CordonException.Invalid("target is required: the template (name or name:tag) to tag.");
        foreach (var tag in body.Tags ?? [])
        {
            images.Tag(caller, target, BaseName(target) + ":" + tag);
        }

        return Results.Json(new { buildID = Guid.Empty, tags = body.Tags ?? [] }, E2bControlPlane.Json, statusCode: 201);
    });

    private static Task<IResult> RemoveTagsAsync(HttpContext context, ImageService images, SandboxService sandboxes) => E2bControlPlane.GuardAsync(async () =>
    {
        var caller = ApiKeyMiddleware.Caller(context);
        var body = await E2bControlPlane.ReadAsync<TagsBody>(context) ?? throw CordonException.Invalid("The body must name the template and the tags.");
        var name = body.Name ?? throw CordonException.Invalid("name is required: the template whose tags go.");
        foreach (var tag in body.Tags ?? [])
        {
            images.Delete(caller, BaseName(name) + ":" + tag, sandboxes.ImagesInUse);
        }

        return Results.NoContent();
    });

    private static IResult ListTags(string templateID, HttpContext context, ImageService images)
        => Results.Json(images.List(ApiKeyMiddleware.Caller(context)).Where(i => i.Status == ImageStates.Ready && i.Name.StartsWith(BaseName(templateID) + ":", StringComparison.Ordinal))
            .Select(i => new { tag = i.Name[(BaseName(templateID).Length + 1)..], buildID = Guid.Empty, createdAt = i.CreatedAt }).ToList(), E2bControlPlane.Json);

    /// <summary>The template's steps as a Dockerfile (each value quoted, so no step can add an instruction), the
    /// uploads it copies from, and the base image to pull first when this server has none of its name.</summary>
    private static (string Dockerfile, List<string> Hashes, PullImageRequest? Pull) Translate(CallerIdentity caller, TriggerBody body, ImageService images, CordonOptions options)
    {
        var text = new StringBuilder();
        PullImageRequest? pull = null;
        if (!string.IsNullOrEmpty(body.FromTemplate))
        {
            text.Append("FROM ").Append(Word(E2bControlPlane.ImageFor(body.FromTemplate, options))).Append('\n');
        }
        else
        {
            var from = string.IsNullOrEmpty(body.FromImage) ? "e2bdev/base" : body.FromImage;
            if (from.StartsWith("e2bdev/", StringComparison.Ordinal) || images.Find(caller, from) is { Status: ImageStates.Ready })
            {
                // E2B's own base images are Cordon's default image (never fetched from Docker Hub); an image of this
                // server's is used by its name.
                text.Append("FROM ").Append(Word(from.StartsWith("e2bdev/", StringComparison.Ordinal) ? options.DefaultImage : from)).Append('\n');
            }
            else
            {
                pull = new PullImageRequest { From = from, Name = ImageService.DefaultPullName(from), Credentials = Credentials(body.FromImageRegistry) };
                text.Append("FROM ").Append(Word(pull.Name)).Append('\n');
            }
        }

        var hashes = new List<string>();
        string? user = null;
        foreach (var step in body.Steps ?? [])
        {
            var args = step.Args ?? [];
            switch (step.Type?.ToUpperInvariant())
            {
                case "COPY" when args.Count >= 2 && step.FilesHash is { } hash && TemplateFiles.IsHash(hash):
                    hashes.Add(hash);
                    text.Append("COPY");
                    if (args.Count > 2 && args[2].Length > 0)
                    {
                        text.Append(" --chown=").Append(Word(args[2]));
                    }

                    if (args.Count > 3 && args[3].Length > 0)
                    {
                        text.Append(" --chmod=").Append(Word(args[3]));
                    }

                    text.Append(' ').Append(JsonSerializer.Serialize(new[] { hash + "/" + args[0].TrimStart('/'), args[1] })).Append('\n');
                    break;
                case "RUN" when args.Count >= 1:
                    var runAs = args.Count > 1 && args[1].Length > 0 ? args[1] : null;
                    if (runAs is not null)
                    {
                        text.Append("USER ").Append(Word(runAs)).Append('\n');
                    }

                    text.Append("RUN ").Append(JsonSerializer.Serialize(new[] { "/bin/sh", "-c", args[0] })).Append('\n');
                    if (runAs is not null)
                    {
                        text.Append("USER ").Append(Word(user ?? "root")).Append('\n');
                    }

                    break;
                case "WORKDIR" when args.Count == 1:
                    text.Append("WORKDIR ").Append(Word(args[0])).Append('\n');
                    break;
                case "USER" when args.Count == 1:
                    user = args[0];
                    text.Append("USER ").Append(Word(user)).Append('\n');
                    break;
                case "ENV" when args.Count >= 2 && args.Count % 2 == 0:
                    text.Append("ENV");
                    for (var i = 0; i < args.Count; i += 2)
                    {
                        text.Append(' ').Append(args[i]).Append('=').Append(Word(args[i + 1]));
                    }

                    text.Append('\n');
                    break;
                default:
                    throw CordonException.Invalid($"The step {step.Type} with {args.Count} argument(s) is not one Cordon builds (COPY, RUN, WORKDIR, USER, ENV).");
            }
        }

        return (text.ToString(), hashes, pull);
    }

    /// <summary>A value as one double-quoted Dockerfile word: quotes, the escape character and <c>$</c> escaped, line
    /// breaks refused (they would end the instruction).</summary>
    private static string Word(string value)
    {
        if (value.Contains('\n') || value.Contains('\r'))
        {
            throw CordonException.Invalid("A template's WORKDIR, USER, ENV value, COPY owner or mode cannot hold a line break.");
        }

        return "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("$", "\\$", StringComparison.Ordinal) + "\"";
    }

    private static RegistryCredentials? Credentials(RegistryBody? registry) => registry switch
    {
        null => null,
        { Type: "registry", Username: { } username, Password: { } password } => new RegistryCredentials { Username = username, Password = password },
        _ => throw CordonException.Invalid("Only registry credentials (type 'registry' with username and password) are supported for fromImageRegistry."),
    };

    private static string Level(BuildEvent e) => e.Type switch
    {
        "error" => "error",
        "warning" => "warn",
        _ => "info",
    };

    private static string Line(BuildEvent e) => e.Type switch
    {
        "step" => $"[{e.Step}/{e.Steps}] {e.Instruction}{(e.Cached == true ? " (cached)" : "")}",
        "error" when e.LastLines is { Count: > 0 } lines => e.Message + "\n" + string.Join('\n', lines),
        _ => e.Message ?? "",
    };

    private static string BaseName(string name) => name.Contains(':') ? name[..name.IndexOf(':')] : name;

    internal sealed class TemplateBuild(string name, string buildId, CallerIdentity caller, IReadOnlyList<string> tags)
    {
        /// <summary>The key that asked for it (its templates live in that key's namespace).</summary>
        public CallerIdentity Caller { get; } = caller;

        public string Name { get; } = name;

        /// <summary>The template's id is its name: <c>Sandbox.create(name)</c> and the status polls use the same.</summary>
        public string TemplateId => Name;

        public string BuildId { get; } = buildId;

        public string Owner => Caller.KeyId;

        public IReadOnlyList<string> Tags { get; } = tags;

        public DateTimeOffset RequestedAt { get; } = DateTimeOffset.UtcNow;

        public BuildLog? Log { get; set; }

        /// <summary>The build's tags were given to its image (once it was ready).</summary>
        public bool Tagged { get; set; }
    }

    private sealed record BuildRequestBody
    {
        public string? Name { get; init; }

        public string? Alias { get; init; }

        public List<string>? Tags { get; init; }

        public int? CpuCount { get; init; }

        [JsonPropertyName("memoryMB")]
        public int? MemoryMb { get; init; }
    }

    private sealed record TriggerBody
    {
        public string? FromImage { get; init; }

        public string? FromTemplate { get; init; }

        public RegistryBody? FromImageRegistry { get; init; }

        public string? StartCmd { get; init; }

        public string? ReadyCmd { get; init; }

        public bool? Force { get; init; }

        public List<StepBody>? Steps { get; init; }
    }

    private sealed record StepBody
    {
        public string? Type { get; init; }

        public List<string>? Args { get; init; }

        public bool? Force { get; init; }

        public string? FilesHash { get; init; }
    }

    private sealed record RegistryBody
    {
        public string? Type { get; init; }

        public string? Username { get; init; }

        public string? Password { get; init; }
    }

    private sealed record TagsBody
    {
        public string? Target { get; init; }

        public string? Name { get; init; }

        public List<string>? Tags { get; init; }
    }
}
