using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Cordon.Server.Errors;

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

    /// <summary>Largest request message: envd's requests are small (a command line, a path, a chunk of input).</summary>
    internal const int MaxMessageBytes = 4 << 20;

    /// <summary>Longest deadline honoured; the protocol allows 10 digits of milliseconds.</summary>
    private const long MaxTimeoutMs = 9_999_999_999;

    /// <summary>Longest keepalive interval honoured, in seconds.</summary>
    private const int MaxKeepaliveSeconds = 3600;

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
        var stream = IsStream(context);
        var bytes = await ReadAtMostAsync(context.Request.Body, MaxMessageBytes + (stream ? 5 : 0), context.RequestAborted)
            ?? throw TooLarge();
        if (stream)
        {
            if (bytes.Length < 5 || (bytes[0] & 0x01) != 0)
            {
                throw new ConnectException("invalid_argument", "The request is not one uncompressed Connect envelope.");
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(1));
            if (length > MaxMessageBytes)
            {
                throw TooLarge();
            }

            if (length < 0 || 5L + length > bytes.Length)
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
            throw new ConnectException("invalid_argument", $"The request message is not valid JSON: {JsonFaults.Describe(ex)}.");
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
            if ((header[0] & 0x01) != 0)
            {
                throw new ConnectException("invalid_argument", "A stream message is compressed; send it uncompressed.");
            }

            if (length < 0 || length > MaxMessageBytes)
            {
                throw TooLarge();
            }

            var payload = await ReadUpToAsync(body, length, context.RequestAborted);
            if (payload.Length != length)
            {
                throw new ConnectException("invalid_argument", "The request ended inside a message.");
            }

            if ((header[0] & EndStreamFlag) != 0)
            {
                yield break;
            }

            var json = IsProto(context) ? System.Text.Encoding.UTF8.GetBytes(ProtoCodec.RequestToJson(context.Request.Path.Value ?? "", payload)) : payload;
            JsonObject? message;
            try
            {
                message = JsonNode.Parse(json) as JsonObject;
            }
            catch (JsonException ex)
            {
                throw new ConnectException("invalid_argument", $"A stream message is not valid JSON: {JsonFaults.Describe(ex)}.");
            }

            yield return message ?? throw new ConnectException("invalid_argument", "A stream message must be a JSON object.");
        }
    }

    private static ConnectException TooLarge()
        => new("resource_exhausted", $"A request message is larger than {MaxMessageBytes >> 20} MiB: send input in smaller pieces.");

    /// <summary>Reads a whole body of at most <paramref name="limit"/> bytes; null when it holds more. The buffer grows
    /// only as bytes arrive.</summary>
    private static async Task<byte[]?> ReadAtMostAsync(Stream stream, int limit, CancellationToken cancellationToken)
    {
        var bytes = await ReadUpToAsync(stream, limit + 1, cancellationToken);
        return bytes.Length > limit ? null : bytes;
    }

    /// <summary>Reads until <paramref name="count"/> bytes or the end of the stream, whichever comes first, growing
    /// the buffer only as bytes arrive: a header may promise more than the client ever sends.</summary>
    private static async Task<byte[]> ReadUpToAsync(Stream stream, int count, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[Math.Clamp(count, 1, 64 * 1024)];
        while (buffer.Length < count)
        {
            var read = await stream.ReadAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, count - buffer.Length)), cancellationToken);
            if (read == 0)
            {
                break;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
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
    /// (seconds, at most an hour), else 90 s as envd does.</summary>
    public static TimeSpan KeepaliveInterval(HttpContext context)
        => int.TryParse(context.Request.Headers["Keepalive-Ping-Interval"], out var seconds) && seconds > 0
            ? TimeSpan.FromSeconds(Math.Min(seconds, MaxKeepaliveSeconds))
            : TimeSpan.FromSeconds(90);

    /// <summary>The call's deadline from <c>Connect-Timeout-Ms</c>, or null when the client set none.</summary>
    /// <exception cref="ConnectException">invalid_argument when the header is not a positive number of at most 10
    /// digits, as the protocol defines it.</exception>
    public static TimeSpan? Timeout(HttpContext context)
    {
        var header = context.Request.Headers["Connect-Timeout-Ms"].ToString();
        if (header.Length == 0)
        {
            return null;
        }

        return long.TryParse(header, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms) && ms is > 0 and <= MaxTimeoutMs
            ? TimeSpan.FromMilliseconds(ms)
            : throw new ConnectException("invalid_argument", $"Connect-Timeout-Ms must be a whole number of milliseconds from 1 to {MaxTimeoutMs}.");
    }

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
