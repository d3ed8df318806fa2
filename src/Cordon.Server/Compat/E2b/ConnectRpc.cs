using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Cordon.Server.Compat.E2b;

/// <summary>The Connect protocol with the JSON codec, as envd speaks it to the E2B SDKs: unary calls are plain
/// JSON in and out; server streams take one enveloped message and answer with enveloped messages
/// (<c>flags:u8 | length:u32 big-endian | JSON</c>), flushed one by one, ending with an end-stream frame that
/// carries the error if there is one. The binary protobuf codec (<c>application/proto</c>,
/// <c>application/connect+proto</c>) is converted at this edge by <see cref="ProtoCodec"/>.</summary>
internal static class ConnectRpc
{
    public const string StreamContentType = "application/connect+json";
    public const string ProtoStreamContentType = "application/connect+proto";
    public const string ProtoContentType = "application/proto";

    private const byte EndStreamFlag = 0x02;
    private const int MaxMessageBytes = 16 << 20;

    public static bool IsStream(HttpContext context)
        => context.Request.ContentType?.StartsWith("application/connect+", StringComparison.OrdinalIgnoreCase) == true;

    /// <summary>The client speaks the binary protobuf codec (the SDKs speak JSON; both work).</summary>
    public static bool IsProto(HttpContext context)
        => context.Request.ContentType is { } type
           && (type.StartsWith(ProtoContentType, StringComparison.OrdinalIgnoreCase) || type.StartsWith(ProtoStreamContentType, StringComparison.OrdinalIgnoreCase));

    /// <summary>Reads the request message (enveloped on streams, plain on unary calls).</summary>
    /// <exception cref="ConnectException">invalid_argument when it is not JSON.</exception>
    public static async Task<JsonObject> ReadRequestAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        var bytes = buffer.ToArray();
        if (IsStream(context))
        {
            if (bytes.Length < 5 || (bytes[0] & 0x01) != 0)
            {
                throw new ConnectException("invalid_argument", "The request is not one uncompressed Connect envelope.");
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(1));
            if (length < 0 || length > MaxMessageBytes || 5 + length > bytes.Length)
            {
                throw new ConnectException("invalid_argument", "The request envelope's length does not match its body.");
            }

            bytes = bytes.AsSpan(5, length).ToArray();
        }

        if (IsProto(context))
        {
            bytes = System.Text.Encoding.UTF8.GetBytes(ProtoCodec.RequestToJson(context.Request.Path.Value ?? "", bytes));
        }

        try
        {
            return bytes.Length == 0 ? [] : JsonNode.Parse(bytes) as JsonObject ?? throw new ConnectException("invalid_argument", "The request message must be a JSON object.");
        }
        catch (JsonException ex)
        {
            throw new ConnectException("invalid_argument", "The request message is not valid JSON: " + ex.Message);
        }
    }

    /// <summary>The enveloped messages of a client stream, as they arrive, until the request body ends.</summary>
    public static async IAsyncEnumerable<JsonObject> ReadMessagesAsync(HttpContext context)
    {
        var body = context.Request.Body;
        var header = new byte[5];
        while (await ReadExactlyOrEndAsync(body, header, context.RequestAborted))
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
            if ((header[0] & 0x01) != 0 || length < 0 || length > MaxMessageBytes)
            {
                throw new ConnectException("invalid_argument", "A stream message is compressed or too large.");
            }

            var payload = new byte[length];
            await body.ReadExactlyAsync(payload, context.RequestAborted);
            if ((header[0] & EndStreamFlag) != 0)
            {
                yield break;
            }

            var json = IsProto(context) ? System.Text.Encoding.UTF8.GetBytes(ProtoCodec.RequestToJson(context.Request.Path.Value ?? "", payload)) : payload;
            yield return JsonNode.Parse(json) as JsonObject ?? throw new ConnectException("invalid_argument", "A stream message must be a JSON object.");
        }
    }

    private static async Task<bool> ReadExactlyOrEndAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        var read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
        return read == buffer.Length ? true : read == 0 ? false : throw new ConnectException("invalid_argument", "The request ended inside a message header.");
    }

    public static async Task WriteUnaryAsync(HttpContext context, JsonNode response)
    {
        context.Response.StatusCode = 200;
        if (IsProto(context))
        {
            context.Response.ContentType = ProtoContentType;
            await context.Response.Body.WriteAsync(ProtoCodec.ResponseFromJson(context.Request.Path.Value ?? "", response.ToJsonString()), context.RequestAborted);
            return;
        }

        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(response.ToJsonString(), context.RequestAborted);
    }

    public static Task WriteUnaryErrorAsync(HttpContext context, ConnectException error)
    {
        context.Response.StatusCode = error.Code switch
        {
            "invalid_argument" or "failed_precondition" or "out_of_range" => 400,
            "unauthenticated" => 401,
            "permission_denied" => 403,
            "not_found" => 404,
            "already_exists" or "aborted" => 409,
            "resource_exhausted" => 429,
            "unimplemented" => 501,
            "unavailable" => 503,
            "deadline_exceeded" => 504,
            _ => 500,
        };
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(new JsonObject { ["code"] = error.Code, ["message"] = error.Message }.ToJsonString(), context.RequestAborted);
    }

    /// <summary>Starts a stream's answer: always 200; errors travel in the end-stream frame (JSON in both codecs).</summary>
    public static void BeginStream(HttpContext context)
    {
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        context.Response.StatusCode = 200;
        context.Response.ContentType = IsProto(context) ? ProtoStreamContentType : StreamContentType;
    }

    public static Task WriteMessageAsync(HttpContext context, JsonNode message, CancellationToken cancellationToken)
        => IsProto(context)
            ? WriteFrameAsync(context, 0, ProtoCodec.ResponseFromJson(context.Request.Path.Value ?? "", message.ToJsonString()), cancellationToken)
            : WriteFrameAsync(context, 0, message.ToJsonString(), cancellationToken);

    public static Task EndStreamAsync(HttpContext context, ConnectException? error)
    {
        var end = error is null ? new JsonObject() : new JsonObject { ["error"] = new JsonObject { ["code"] = error.Code, ["message"] = error.Message } };
        return WriteFrameAsync(context, EndStreamFlag, end.ToJsonString(), CancellationToken.None);
    }

    /// <summary>How often to send a keepalive on a quiet stream: the client's <c>Keepalive-Ping-Interval</c>
    /// (seconds), else 90 s as envd does.</summary>
    public static TimeSpan KeepaliveInterval(HttpContext context)
        => int.TryParse(context.Request.Headers["Keepalive-Ping-Interval"], out var seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : TimeSpan.FromSeconds(90);

    /// <summary>The call's deadline from <c>Connect-Timeout-Ms</c>, or null when the client set none.</summary>
    public static TimeSpan? Timeout(HttpContext context)
        => long.TryParse(context.Request.Headers["Connect-Timeout-Ms"], out var ms) && ms > 0 ? TimeSpan.FromMilliseconds(ms) : null;

    private static Task WriteFrameAsync(HttpContext context, byte flags, string json, CancellationToken cancellationToken)
        => WriteFrameAsync(context, flags, System.Text.Encoding.UTF8.GetBytes(json), cancellationToken);

    private static async Task WriteFrameAsync(HttpContext context, byte flags, byte[] payload, CancellationToken cancellationToken)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = flags;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), payload.Length);
        payload.CopyTo(frame, 5);
        await context.Response.Body.WriteAsync(frame, cancellationToken);
        await context.Response.Body.FlushAsync(cancellationToken);
    }
}

/// <summary>A Connect error: a code from the protocol's list and a message.</summary>
internal sealed class ConnectException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}
