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

namespace Cordon.Server.Api;

/// <summary>The REST adapter for images.</summary>
public static class ImageEndpoints
{
    public static void MapImageEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/images").WithTags("Images");

        group.MapGet("", (HttpContext context, ImageService images) => Results.Ok(images.List(ApiKeyMiddleware.Caller(context)).ToList()))
            .WithName("ListImages").Produces<List<ImageInfo>>()
            .WithSummary("The server's images and, for a tenant key, its own (another tenant's are never listed).");

        group.MapGet("/{name}", (string name, HttpContext context, ImageService images) =>
        {
            var caller = ApiKeyMiddleware.Caller(context);
            return images.Find(caller, name) is { } image ? Results.Ok(ImageService.View(caller, image))
                : throw new CordonException(ErrorCode.ImageNotFound, $"The image '{name}' does not exist.") { Subject = name };
        }).WithName("GetImage").Produces<ImageInfo>();

        group.MapPost("", async (string? name, HttpContext context, ImageService images, ImageBuildQueue queue, IOptions<CordonOptions> options) =>
        {
            var caller = ApiKeyMiddleware.Caller(context);

            // A JSON body pulls from a registry ({"from": "registry/repo:tag"}); any other body is an archive to import.
            if (context.Request.HasJsonContentType())
            {
                RequestBody.AllowUpTo(context, 64 << 10);
                PullImageRequest request;
                try
                {
                    request = await context.Request.ReadFromJsonAsync(ApiJsonContext.Default.PullImageRequest, context.RequestAborted)
                        ?? throw CordonException.Invalid("The body must be a JSON object such as {\"from\": \"registry.example.com/team/app:1.2\"}.");
                }
                catch (System.Text.Json.JsonException ex)
                {
                    throw CordonException.Invalid($"The body is not a pull request ({ex.Message}): send {{\"from\": \"registry.example.com/team/app:1.2\"}}.");
                }

                var reserved = ImageService.View(caller, await queue.StartPullAsync(caller, request with { Name = request.Name ?? name }, context.RequestAborted));
                return Results.Accepted($"/v1/images/{reserved.Name}", reserved);
            }

            RequestBody.AllowUpTo(context, options.Value.MaxUploadBytes);
            var image = ImageService.View(caller, await images.ImportAsync(caller, name ?? "", context.Request.Body, context.RequestAborted));
            return Results.Created($"/v1/images/{image.Name}", image);
        }).WithName("ImportImage").Accepts<Stream>("application/x-tar", "application/json", "*/*")
            .Produces<ImageInfo>(201).Produces<ImageInfo>(202)
            .WithSummary("Import a root file system tarball, or an OCI image layout packed as a tarball (gzip or zstd layers), as ?name=; "
                + "or, with a JSON body {\"from\": \"registry/repo:tag\"}, pull it from an OCI registry (202; follow it with GET /v1/images/{name}). "
                + "A tenant key's images are its own; an admin key's are the server's, shared by every key.");

        group.MapPost("/{name}/build", async (string name, bool? rebuild, string? dockerfile, string? target, bool? noCache, [Microsoft.AspNetCore.Mvc.FromQuery] string[]? buildArg, string? network, string? startCmd, string? readyCmd,
            HttpContext context, ImageService images, IOptions<CordonOptions> options, ImageBuildQueue queue, ImageBuilder builder, SandboxService sandboxes) =>
        {
            if (name == options.Value.DefaultImage)
            {
                RequireAdmin(context);
                queue.BuildDefault(rebuild ?? false);
                return Results.Accepted($"/v1/images/{name}", images.Find(name) ?? new ImageInfo { Name = name, Status = ImageStates.Building, CreatedAt = DateTimeOffset.UtcNow });
            }

            if (context.Request.ContentLength is 0 || (context.Request.ContentLength is null && !context.Request.Headers.TransferEncoding.Any()))
            {
                throw CordonException.Invalid("A build needs its context as the body: a tar archive (plain, gzip or zstd) holding the Dockerfile and the files it copies.");
            }

            var args = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var pair in buildArg ?? [])
            {
                var equals = pair.IndexOf('=');
                if (equals <= 0)
                {
                    throw CordonException.Invalid($"buildArg takes NAME=value; '{(pair.Length > 64 ? pair[..64] : pair)}' has no '='.");
                }

                args[pair[..equals]] = pair[(equals + 1)..];
            }

            var policy = network switch
            {
                null => null,
                "internet" => sandboxes.DefaultNetwork.Internet ? sandboxes.DefaultNetwork : Network.EgressPolicy.OpenInternet,
                "none" => Network.EgressPolicy.None,
                _ => throw CordonException.Invalid("network is 'internet' or 'none' (the server's default when left out)."),
            };
            RequestBody.AllowUpTo(context, options.Value.MaxUploadBytes);
            var (image, _) = await builder.StartAsync(ApiKeyMiddleware.Caller(context), new BuildRequest
            {
                Name = name,
                Dockerfile = dockerfile ?? "Dockerfile",
                Target = target,
                Args = args,
                NoCache = noCache ?? false,
                Network = policy,
                StartCmd = startCmd,
                ReadyCmd = readyCmd,
            }, context.Request.Body, context.RequestAborted);
            return Results.Accepted($"/v1/images/{name}/build", image);
        }).WithName("BuildImage").Accepts<Stream>("application/x-tar", "application/gzip", "*/*").Produces<ImageInfo>(202)
            .WithSummary("Build an image from a Dockerfile: the body is the build context (a tar archive with the Dockerfile); follow the build with "
                + "GET /v1/images/{name}/build. For the default image's name, (re)build it from Debian packages (no body).");

        group.MapGet("/{name}/build", async (string name, long? offset, bool? follow, HttpContext context, ImageBuilder builder) =>
        {
            var log = builder.LogOf(ApiKeyMiddleware.Caller(context), name) ?? throw new CordonException(ErrorCode.ImageNotFound, $"No build of '{name}' ran since the server started.") { Subject = name };
            var at = Math.Max(0, offset ?? 0);
            Ndjson.Begin(context);
            while (true)
            {
                // Whether it had ended is read before the events: the events read then are all there will be.
                var completed = log.Completed;
                foreach (var e in log.Read(at))
                {
                    await Ndjson.WriteAsync(context, e, ApiJsonContext.Default.BuildEvent, context.RequestAborted);
                    at = e.Offset + 1;
                }

                if (follow != true || completed)
                {
                    return Results.Empty;
                }

                await log.WaitAsync(at, context.RequestAborted);
            }
        }).WithName("GetImageBuild").Produces<BuildEvent>(200, Ndjson.ContentType)
            .WithSummary("The image's last build log as NDJSON, from ?offset=; with follow=true, kept open until the build ends (its last line has type 'done').");

        group.MapDelete("/{name}", (string name, HttpContext context, ImageService images, SandboxService sandboxes) =>
        {
            images.Delete(ApiKeyMiddleware.Caller(context), name, sandboxes.ImagesInUse);
            return Results.NoContent();
        }).WithName("DeleteImage").Produces(204);
    }

    public static void MapBuildCacheEndpoints(this IEndpointRouteBuilder app)
        => app.MapDelete("/v1/build-cache", (HttpContext context, ImageBuilder builder) =>
        {
            RequireAdmin(context);
            builder.ClearCache();
            return Results.NoContent();
        }).WithTags("Images").WithName("ClearBuildCache").Produces(204).WithSummary("Empty the build step cache: the next builds run every step.");

    internal static void RequireAdmin(HttpContext context)
    {
        if (!ApiKeyMiddleware.Caller(context).Admin)
        {
            throw new CordonException(ErrorCode.AdminRequired, "This needs an admin API key; tenant keys may only manage their own sandboxes.");
        }
    }
}
