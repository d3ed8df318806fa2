using System.IO.Compression;
using System.Text.Json.Nodes;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Http;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Cordon.Server.Compat.E2b;

/// <summary>envd's <c>/files</c>: a download (GET, the raw bytes) and uploads (POST, multipart parts or the raw
/// body, gzip allowed).</summary>
public sealed partial class Envd
{
    private async Task FilesAsync(HttpContext context, Sandbox sandbox, CallerIdentity caller)
    {
        var user = context.Request.Query["username"].ToString() is { Length: > 0 } name ? name : DefaultUser(sandbox);
        var home = user ?? sandbox.DefaultUser;
        try
        {
            if (HttpMethods.IsGet(context.Request.Method))
            {
                var path = SandboxUsers.Resolve(home, context.Request.Query["path"].ToString());
                await using var file = await sandboxes.ReadFileAsync(caller, sandbox.Id, path, user, context.RequestAborted);
                context.Response.ContentType = "application/octet-stream";

                // No Content-Length: a file's size (0 for /proc files) need not be what reading it gives.
                await file.CopyToAsync(context.Response.Body, context.RequestAborted);
                return;
            }

            RequestBody.AllowUpTo(context, options.Value.MaxUploadBytes);
            var written = new JsonArray();
            var target = context.Request.Query["path"].ToString();
            if (MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var type) && type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
            {
                var boundary = HeaderUtilities.RemoveQuotes(type.Boundary).Value ?? throw CordonException.Invalid("The multipart body has no boundary.");
                var reader = new MultipartReader(boundary, context.Request.Body);
                while (await reader.ReadNextSectionAsync(context.RequestAborted) is { } section)
                {
                    var disposition = section.GetContentDispositionHeader();
                    var filename = disposition?.FileName.Value ?? disposition?.FileNameStar.Value;
                    var path = SandboxUsers.Resolve(home, target.Length > 0 ? target : Uri.UnescapeDataString(filename ?? ""));
                    written.Add(await WriteAsync(sandbox, caller, user, path, section.Body, context.RequestAborted));
                }
            }
            else
            {
                var body = context.Request.Headers.ContentEncoding.ToString().Contains("gzip", StringComparison.OrdinalIgnoreCase)
                    ? new GZipStream(context.Request.Body, CompressionMode.Decompress)
                    : context.Request.Body;
                written.Add(await WriteAsync(sandbox, caller, user, SandboxUsers.Resolve(home, target), body, context.RequestAborted));
            }

            if (written.Count == 0)
            {
                throw CordonException.Invalid("The upload holds no file: send a multipart part named 'file', or the raw bytes with ?path=.");
            }

            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(written.ToJsonString(), context.RequestAborted);
        }
        catch (CordonException ex) when (!context.Response.HasStarted)
        {
            await E2bErrors.From(ex).ExecuteAsync(context);
        }
        catch (InvalidDataException ex) when (!context.Response.HasStarted)
        {
            await E2bErrors.Body(400, "The upload is malformed: " + ex.Message).ExecuteAsync(context);
        }
    }

    /// <summary>Writes one uploaded file; the agent creates missing parent directories itself.</summary>
    private async Task<JsonObject> WriteAsync(Sandbox sandbox, CallerIdentity caller, string? user, string path, Stream content, CancellationToken cancellationToken)
    {
        var entry = await sandboxes.WriteFileAsync(caller, sandbox.Id, path, content, mode: null, user: user, cancellationToken);
        return new JsonObject { ["name"] = entry.Name, ["path"] = entry.Path, ["type"] = "file" };
    }
}
