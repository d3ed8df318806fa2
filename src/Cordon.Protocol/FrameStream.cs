using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Cordon.Protocol;

/// <summary>Reads and writes agent protocol frames on a stream (a unix socket, vsock or TCP connection).</summary>
/// <remarks>Reads are single-reader and writes are serialised, so one reader task and any number of
/// writers may share an instance.</remarks>
public sealed class FrameStream : IAsyncDisposable
{
    /// <summary>Largest payload one frame may carry; larger content is split into several frames.</summary>
    public const int MaxPayload = 256 * 1024;

    /// <summary>Size of the data chunks writers should use for streamed content.</summary>
    public const int ChunkSize = 64 * 1024;

    /// <summary>Largest JSON message, split over frames (<see cref="FrameKind.Continued"/>): a chart of several MiB of
    /// base64, a deep directory listing. A reader refuses a larger one (<see cref="MessageTooLargeException"/>).</summary>
    public const int MaxMessage = 32 << 20;

    private readonly Stream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly byte[] _header = new byte[5];
    // Most frames are small (requests, events, a command's few lines of output): the read buffer starts at a
    // page and grows to a full chunk for the first frame that needs it. (A 64 KiB buffer per connection was
    // zeroed and faulted in on every request, by the server and the agent alike.)
    private byte[] _buffer = new byte[4096];

    public FrameStream(Stream stream) => _stream = stream;

    /// <summary>The underlying stream.</summary>
    public Stream Stream => _stream;

    /// <summary>Reads the next frame, or returns null when the peer closed the connection cleanly between frames. A
    /// message sent in parts arrives as one frame.</summary>
    /// <exception cref="InvalidDataException">The peer sent a frame that breaks the protocol.</exception>
    /// <exception cref="MessageTooLargeException">The peer sent a message larger than <see cref="MaxMessage"/>.</exception>
    public async ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken)
    {
        byte[]? message = null;
        var messageLength = 0;
        while (true)
        {
            if (!await FillAsync(_header, cancellationToken).ConfigureAwait(false))
            {
                return message is null ? null : throw new EndOfStreamException("The connection closed in the middle of an agent protocol message.");
            }

            var length = BinaryPrimitives.ReadUInt32LittleEndian(_header);
            if (length < 1 || length > MaxPayload + 1)
            {
                throw new InvalidDataException($"Agent protocol frame of {length} bytes is out of range.");
            }

            var kind = (FrameKind)_header[4];
            var payloadLength = (int)length - 1;
            if (message is null && kind != FrameKind.Continued)
            {
                if (_buffer.Length < payloadLength)
                {
                    _buffer = new byte[Math.Max(payloadLength, ChunkSize + 5)];
                }

                var payload = _buffer.AsMemory(0, payloadLength);
                if (payloadLength > 0 && !await FillAsync(payload, cancellationToken).ConfigureAwait(false))
                {
                    throw new EndOfStreamException("The connection closed in the middle of an agent protocol frame.");
                }

                return new Frame(kind, payload);
            }

            // A part of a larger message: gathered, within the bound, before a byte of it is kept.
            if ((long)messageLength + payloadLength > MaxMessage)
            {
                throw new MessageTooLargeException($"An agent protocol message larger than {MaxMessage >> 20} MiB was refused.");
            }

            message ??= new byte[Math.Max(2 * MaxPayload, 4096)];
            if (message.Length < messageLength + payloadLength)
            {
                Array.Resize(ref message, (int)Math.Min(MaxMessage, Math.Max(2L * message.Length, messageLength + payloadLength)));
            }

            if (payloadLength > 0 && !await FillAsync(message.AsMemory(messageLength, payloadLength), cancellationToken).ConfigureAwait(false))
            {
                throw new EndOfStreamException("The connection closed in the middle of an agent protocol frame.");
            }

            messageLength += payloadLength;
            if (kind != FrameKind.Continued)
            {
                return new Frame(kind, message.AsMemory(0, messageLength));
            }
        }
    }

    /// <summary>Writes one frame with a raw payload (at most <see cref="MaxPayload"/> bytes).</summary>
    public async ValueTask WriteAsync(FrameKind kind, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        if (payload.Length > MaxPayload)
        {
            throw new ArgumentOutOfRangeException(nameof(payload), "A frame payload may not exceed FrameStream.MaxPayload.");
        }

        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteFrameAsync(kind, payload, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Writes <paramref name="value"/> as JSON: one frame, or several (<see cref="FrameKind.Continued"/>)
    /// for a message larger than <see cref="MaxPayload"/>, never interleaved with another writer's frames.</summary>
    /// <exception cref="MessageTooLargeException">The JSON is larger than <see cref="MaxMessage"/>.</exception>
    public async ValueTask WriteJsonAsync<T>(FrameKind kind, T value, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);
        if (bytes.Length <= MaxPayload)
        {
            await WriteAsync(kind, bytes, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (bytes.Length > MaxMessage)
        {
            throw new MessageTooLargeException($"A {kind} message of {bytes.Length} bytes is larger than the protocol's {MaxMessage >> 20} MiB.");
        }

        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var rest = bytes.AsMemory();
            while (rest.Length > MaxPayload)
            {
                await WriteFrameAsync(FrameKind.Continued, rest[..MaxPayload], cancellationToken).ConfigureAwait(false);
                rest = rest[MaxPayload..];
            }

            await WriteFrameAsync(kind, rest, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask WriteFrameAsync(FrameKind kind, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        // Header and payload go out in one write when small, so a frame is usually one segment.
        var total = 5 + payload.Length;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(total);
        try
        {
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)(payload.Length + 1));
            buffer[4] = (byte)kind;
            payload.Span.CopyTo(buffer.AsSpan(5));
            await _stream.WriteAsync(buffer.AsMemory(0, total), cancellationToken).ConfigureAwait(false);
            await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Parses a JSON frame payload.</summary>
    /// <exception cref="InvalidDataException">The payload is not the expected JSON.</exception>
    public static T ParseJson<T>(Frame frame, JsonTypeInfo<T> typeInfo)
    {
        try
        {
            return JsonSerializer.Deserialize(frame.Payload.Span, typeInfo)
                ?? throw new InvalidDataException($"Agent protocol {frame.Kind} frame holds JSON null.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"Agent protocol {frame.Kind} frame holds malformed JSON: {ex.Message}", ex);
        }
    }

    private async ValueTask<bool> FillAsync(Memory<byte> target, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < target.Length)
        {
            var n = await _stream.ReadAsync(target[read..], cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (read == 0)
                {
                    return false;
                }

                throw new EndOfStreamException("The connection closed in the middle of an agent protocol frame.");
            }

            read += n;
        }

        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        _writeLock.Dispose();
    }
}
