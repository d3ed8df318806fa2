using System.Globalization;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Http;
using Cordon.Server.Sandboxes;
using Cordon.Server.Volumes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Compat.E2b;

/// <summary>E2B's volumes (<c>Volume.create</c>, <c>connect</c>, <c>getInfo</c>, <c>list</c>, <c>destroy</c>) and
/// their content API (<c>/volumecontent/{id}/dir|path|file</c>, which the SDK reaches at <c>E2B_VOLUME_API_URL</c>
/// with the volume's own token as <c>Authorization: Bearer</c>), over <see cref="SandboxService"/>.</summary>
public static class E2bVolumes
{
    /// <summary>The paths the volume's token, not an API key, authorises.</summary>
    public const string ContentPrefix = "/volumecontent";

    public static void MapE2bVolumes(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/volumes").ExcludeFromDescription();
        group.MapPost("", CreateAsync);
        group.MapGet("", List);
        group.MapGet("/{id}", Get);
        group.MapDelete("/{id}", DeleteAsync);

        var content = app.MapGroup(ContentPrefix + "/{id}").ExcludeFromDescription();
        content.MapGet("/dir", (string id, string? path, int? depth, HttpContext context, SandboxService sandboxes)
            => ContentAsync(id, context, sandboxes, async volume => (object)(await sandboxes.ListVolumeAsync(volume, path, depth ?? 1)).Select(Stat).ToList()));
        content.MapPost("/dir", (string id, string? path, int? uid, int? gid, string? mode, HttpContext context, SandboxService sandboxes)
            => ContentAsync(id, context, sandboxes, async volume => Stat(await sandboxes.MakeVolumeDirectoryAsync(volume, path, Mode(mode), uid, gid))));
        content.MapGet("/path", (string id, string? path, HttpContext context, SandboxService sandboxes)
            => ContentAsync(id, context, sandboxes, async volume => Stat(await sandboxes.StatVolumeAsync(volume, path))));
        content.MapPatch("/path", (string id, string? path, HttpContext context, SandboxService sandboxes) => ContentAsync(id, context, sandboxes, async volume =>
        {
            var body = await E2bControlPlane.ReadAsync<MetadataBody>(context) ?? new MetadataBody();
            return Stat(await sandboxes.SetVolumeMetadataAsync(volume, path, body.Mode, body.Uid, body.Gid));
        }));
        content.MapDelete("/path", (string id, string? path, HttpContext context, SandboxService sandboxes) => ContentAsync(id, context, sandboxes, async volume =>
        {
            await sandboxes.RemoveVolumePathAsync(volume, path);
            return (object?)null;
        }));
        content.MapGet("/file", async (string id, string? path, HttpContext context, SandboxService sandboxes) =>
        {
            if (Authorize(id, context, sandboxes) is not { } volume)
            {
                return E2bErrors.Body(401, "The volume token is missing or wrong: use the token Volume.create or Volume.connect returned.");
            }

            return await E2bControlPlane.GuardAsync(async () => Results.Stream(await sandboxes.ReadVolumeFileAsync(volume, path), "application/octet-stream"));
        });
        content.MapPut("/file", (string id, string? path, int? uid, int? gid, string? mode, HttpContext context, SandboxService sandboxes, IOptions<CordonOptions> options) =>
        {
            RequestBody.AllowUpTo(context, options.Value.MaxUploadBytes);
            return ContentAsync(id, context, sandboxes, async volume => Stat(await sandboxes.WriteVolumeFileAsync(volume, path, context.Request.Body, Mode(mode), uid, gid, context.RequestAborted)));
        });
    }

    private static Task<IResult> CreateAsync(HttpContext context, SandboxService sandboxes) => E2bControlPlane.GuardAsync(async () =>
    {
        var body = await E2bControlPlane.ReadAsync<VolumeBody>(context) ?? throw CordonException.Invalid("The body must hold name.");
        var volume = await sandboxes.CreateVolumeAsync(ApiKeyMiddleware.Caller(context), body.Name, null, context.RequestAborted);
        return Results.Json(Describe(volume, withToken: true), E2bControlPlane.Json, statusCode: 201);
    });

    private static Task<IResult> List(HttpContext context, SandboxService sandboxes) => E2bControlPlane.GuardAsync(()
        => Task.FromResult(Results.Json(sandboxes.ListVolumes(ApiKeyMiddleware.Caller(context)).Select(v => Describe(v, withToken: false)).ToList(), E2bControlPlane.Json)));

    private static Task<IResult> Get(string id, HttpContext context, SandboxService sandboxes) => E2bControlPlane.GuardAsync(()
        => Task.FromResult(Results.Json(Describe(sandboxes.GetVolume(ApiKeyMiddleware.Caller(context), id), withToken: true), E2bControlPlane.Json)));

    private static Task<IResult> DeleteAsync(string id, HttpContext context, SandboxService sandboxes) => E2bControlPlane.GuardAsync(async () =>
    {
        var caller = ApiKeyMiddleware.Caller(context);
        sandboxes.GetVolume(caller, id); // 404 when unknown, as E2B
        await sandboxes.DeleteVolumeAsync(caller, id, context.RequestAborted);
        return Results.NoContent();
    });

    private static object Describe(VolumeRecord volume, bool withToken) => withToken
        ? new { volumeID = volume.Id, name = volume.Name, token = volume.Token }
        : new { volumeID = volume.Id, name = volume.Name };

    private static VolumeRecord? Authorize(string id, HttpContext context, SandboxService sandboxes)
    {
        var header = context.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? sandboxes.VolumeByToken(id, header["Bearer ".Length..].Trim()) : null;
    }

    private static async Task<IResult> ContentAsync<T>(string id, HttpContext context, SandboxService sandboxes, Func<VolumeRecord, Task<T>> operation)
    {
        if (Authorize(id, context, sandboxes) is not { } volume)
        {
            return E2bErrors.Body(401, "The volume token is missing or wrong: use the token Volume.create or Volume.connect returned.");
        }

        return await E2bControlPlane.GuardAsync(async () =>
        {
            var result = await operation(volume);
            return result is null ? Results.NoContent() : Results.Json(result, E2bControlPlane.Json);
        });
    }

    private static object Stat(VolumeFile entry) => new
    {
        name = entry.Name,
        path = entry.Path,
        type = entry.Type,
        size = entry.Size,
        mode = entry.Mode,
        uid = entry.Uid,
        gid = entry.Gid,
        atime = entry.AccessedAt,
        mtime = entry.ModifiedAt,
        ctime = entry.ChangedAt,
        target = entry.Target,
    };

    private static uint? Mode(string? mode) => mode is null ? null
        : uint.TryParse(mode, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value <= 0xFFF ? value
        : throw CordonException.Invalid($"mode '{mode}' is not a file mode (a number such as 420 for 0644).");

    private sealed record VolumeBody
    {
        public string? Name { get; init; }
    }

    private sealed record MetadataBody
    {
        public int? Uid { get; init; }

        public int? Gid { get; init; }

        public uint? Mode { get; init; }
    }
}
