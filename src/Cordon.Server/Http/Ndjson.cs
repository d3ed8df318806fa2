using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Cordon.Server.Http;

/// <summary>Streaming responses as newline-delimited JSON: one flushed line per event.</summary>
public static class Ndjson
{
    public const string ContentType = "application/x-ndjson";

    /// <summary>The client asked for a stream (<c>Accept: application/x-ndjson</c>).</summary>
    public static bool Requested(HttpContext context)
        => context.Request.Headers.Accept.Any(a => a?.Contains(ContentType, StringComparison.OrdinalIgnoreCase) == true);

    public static void Begin(HttpContext context)
    {
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        context.Response.ContentType = ContentType;
        context.Response.Headers.CacheControl = "no-cache";
    }

    public static async Task WriteAsync<T>(HttpContext context, T value, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        var line = JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);
        await context.Response.Body.WriteAsync(line, cancellationToken);
        await context.Response.Body.WriteAsync("\n"u8.ToArray(), cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken);
    }
}
