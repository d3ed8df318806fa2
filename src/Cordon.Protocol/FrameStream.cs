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

    /// <summary>Reads the next frame, or returns null when the peer closed the connection cleanly between frames.</summary>
    /// <exception cref="InvalidDataException">The peer sent a frame that breaks the protocol.</exception>
    public async ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken)
    {
        if (!await FillAsync(_header, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(_header);
        if (length < 1 || length > MaxPayload + 1)
        {
            throw new InvalidDataException($"Agent protocol frame of {length} bytes is out of range.");
        }

        var kind = (FrameKind)_header[4];
        var payloadLength = (int)length - 1;
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
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Writes one frame whose payload is <paramref name="value"/> as JSON.</summary>
    public ValueTask WriteJsonAsync<T>(FrameKind kind, T value, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
        => WriteAsync(kind, JsonSerializer.SerializeToUtf8Bytes(value, typeInfo), cancellationToken);

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
