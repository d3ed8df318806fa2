using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Http;
using Cordon.Server.Images;
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

        group.MapGet("", (ImageService images) => Results.Ok(images.List().ToList()))
            .WithName("ListImages").Produces<List<ImageInfo>>();

        group.MapGet("/{name}", (string name, ImageService images)
            => images.Find(name) is { } image ? Results.Ok(image) : throw new CordonException(ErrorCode.ImageNotFound, $"The image '{name}' does not exist.") { Subject = name })
            .WithName("GetImage").Produces<ImageInfo>();

        group.MapPost("", async (string? name, HttpContext context, ImageService images, ImageBuildQueue queue, IOptions<CordonOptions> options) =>
        {
            RequireAdmin(context);

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

                var reserved = await queue.StartPullAsync(request with { Name = request.Name ?? name }, context.RequestAborted);
                return Results.Accepted($"/v1/images/{reserved.Name}", reserved);
            }

            RequestBody.AllowUpTo(context, options.Value.MaxUploadBytes);
            var image = await images.ImportAsync(name ?? "", context.Request.Body, context.RequestAborted);
            return Results.Created($"/v1/images/{image.Name}", image);
        }).WithName("ImportImage").Accepts<Stream>("application/x-tar", "application/json", "*/*")
            .Produces<ImageInfo>(201).Produces<ImageInfo>(202)
            .WithSummary("Import a root file system tarball, or an OCI image layout packed as a tarball (gzip or zstd layers), as ?name=; "
                + "or, with a JSON body {\"from\": \"registry/repo:tag\"}, pull it from an OCI registry (202; follow it with GET /v1/images/{name}).");

        group.MapPost("/{name}/build", (string name, bool? rebuild, HttpContext context, ImageService images, IOptions<CordonOptions> options, ImageBuildQueue queue) =>
        {
            RequireAdmin(context);
            if (name != options.Value.DefaultImage)
            {
                throw CordonException.Invalid($"Only the default image ('{options.Value.DefaultImage}') is built by Cordon; import other images with POST /v1/images?name=.");
            }

            queue.BuildDefault(rebuild ?? false);
            return Results.Accepted($"/v1/images/{name}", images.Find(name) ?? new ImageInfo { Name = name, Status = ImageStates.Building, CreatedAt = DateTimeOffset.UtcNow });
        }).WithName("BuildImage").Produces<ImageInfo>(202).WithSummary("Start building the default image; follow it with GET /v1/images/{name}.");

        group.MapDelete("/{name}", (string name, HttpContext context, ImageService images, SandboxService sandboxes) =>
        {
            RequireAdmin(context);
            images.Delete(name, sandboxes.ImagesInUse);
            return Results.NoContent();
        }).WithName("DeleteImage").Produces(204);
    }

    internal static void RequireAdmin(HttpContext context)
    {
        if (!ApiKeyMiddleware.Caller(context).Admin)
        {
            throw new CordonException(ErrorCode.AdminRequired, "This needs an admin API key; tenant keys may only manage their own sandboxes.");
        }
    }
}
