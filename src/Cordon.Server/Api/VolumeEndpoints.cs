using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Http;
using Cordon.Server.Sandboxes;
using Cordon.Server.Shapes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Api;

/// <summary>The REST adapter for volumes and their files (read and written without a sandbox).</summary>
public static class VolumeEndpoints
{
    public static void MapVolumeEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/volumes").WithTags("Volumes");

        group.MapPost("", async (CreateVolumeRequest request, HttpContext context, SandboxService sandboxes) =>
        {
            var volume = await sandboxes.CreateVolumeAsync(ApiKeyMiddleware.Caller(context), request.Name, request.SizeMiB, context.RequestAborted);
            return Results.Created($"/v1/volumes/{volume.Name}", volume.ToInfo(0));
        }).WithName("CreateVolume").Produces<VolumeInfo>(201).WithSummary("Create a volume; mount it with volumeMounts on POST /v1/sandboxes.");

        group.MapGet("", (HttpContext context, SandboxService sandboxes)
            => Results.Ok(sandboxes.ListVolumes(ApiKeyMiddleware.Caller(context)).Select(v => v.ToInfo(sandboxes.VolumeUsers(v.Id))).ToList()))
            .WithName("ListVolumes").Produces<List<VolumeInfo>>();

        group.MapGet("/{volume}", (string volume, HttpContext context, SandboxService sandboxes) =>
        {
            var found = sandboxes.GetVolume(ApiKeyMiddleware.Caller(context), volume);
            return Results.Ok(found.ToInfo(sandboxes.VolumeUsers(found.Id)));
        }).WithName("GetVolume").Produces<VolumeInfo>().WithSummary("A volume, by name or id.");

        group.MapDelete("/{volume}", async (string volume, HttpContext context, SandboxService sandboxes) =>
        {
            await sandboxes.DeleteVolumeAsync(ApiKeyMiddleware.Caller(context), volume, context.RequestAborted);
            return Results.NoContent();
        }).WithName("DeleteVolume").Produces(204).WithSummary("Delete a volume and its files; refused (409) while a sandbox mounts it.");

        group.MapGet("/{volume}/files", async (string volume, string? path, bool? list, int? depth, HttpContext context, SandboxService sandboxes) =>
        {
            var found = sandboxes.GetVolume(ApiKeyMiddleware.Caller(context), volume);
            if (list is true)
            {
                var entries = await sandboxes.ListVolumeAsync(found, path, depth ?? 1);
                return Results.Ok(entries.Select(e => e.ToInfo()).ToList());
            }

            var stream = await sandboxes.ReadVolumeFileAsync(found, path);
            return Results.Stream(stream, "application/octet-stream");
        }).WithName("ReadVolumeFile").Produces<Stream>(200, "application/octet-stream")
            .WithSummary("Read a file of the volume; with list=true, list a directory (depth levels) instead.");

        group.MapPut("/{volume}/files", async (string volume, string? path, string? mode, HttpContext context, SandboxService sandboxes, IOptions<CordonOptions> options) =>
        {
            RequestBody.AllowUpTo(context, options.Value.MaxUploadBytes);
            var found = sandboxes.GetVolume(ApiKeyMiddleware.Caller(context), volume);
            var entry = await sandboxes.WriteVolumeFileAsync(found, path, context.Request.Body, ParseMode(mode), null, null, context.RequestAborted);
            return Results.Ok(entry.ToInfo());
        }).WithName("WriteVolumeFile").Accepts<Stream>("application/octet-stream", "*/*").Produces<VolumeFileInfo>()
            .WithSummary("Write a file of the volume from the raw body (parents made as needed); it replaces the old file once complete.");

        group.MapPost("/{volume}/directories", async (string volume, string? path, HttpContext context, SandboxService sandboxes) =>
        {
            var found = sandboxes.GetVolume(ApiKeyMiddleware.Caller(context), volume);
            var entry = await sandboxes.MakeVolumeDirectoryAsync(found, path, null, null, null);
            return Results.Ok(entry.ToInfo());
        }).WithName("MakeVolumeDirectory").Produces<VolumeFileInfo>();

        group.MapDelete("/{volume}/files", async (string volume, string? path, HttpContext context, SandboxService sandboxes) =>
        {
            var found = sandboxes.GetVolume(ApiKeyMiddleware.Caller(context), volume);
            await sandboxes.RemoveVolumePathAsync(found, path);
            return Results.NoContent();
        }).WithName("RemoveVolumeFile").Produces(204).WithSummary("Remove a file, a symlink or a directory with everything in it.");
    }

    /// <summary>An octal mode (<c>644</c>, <c>0755</c>) from the query, or null.</summary>
    internal static uint? ParseMode(string? mode)
    {
        if (string.IsNullOrEmpty(mode))
        {
            return null;
        }

        try
        {
            var value = Convert.ToUInt32(mode, 8);
            return value <= 0xFFF ? value : throw new FormatException();
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
        {
            throw Errors.CordonException.Invalid($"mode '{mode}' is not an octal file mode such as 644 or 0755.");
        }
    }
}
