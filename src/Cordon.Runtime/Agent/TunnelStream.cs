using Cordon.Protocol;

namespace Cordon.Runtime.Agent;

/// <summary>A TCP connection to a port inside a sandbox, carried by the agent (<see cref="ConnectPortRequest"/>),
/// as a duplex stream: what is written goes to the service, what the service sends is read.</summary>
public sealed class TunnelStream : Stream
{
    private readonly FrameStream _frames;
    private byte[] _pending = [];
    private int _pendingOffset;
    private bool _ended;

    internal TunnelStream(FrameStream frames) => _frames = frames;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_pendingOffset >= _pending.Length)
        {
            if (_ended)
            {
                return 0;
            }

            var frame = await _frames.ReadAsync(cancellationToken);
            switch (frame?.Kind)
            {
                case null or FrameKind.DataEnd:
                    _ended = true;
                    return 0;
                case FrameKind.Data:
                    // The frame's payload is only valid until the next read: keep a copy.
                    _pending = frame.Value.Payload.ToArray();
                    _pendingOffset = 0;
                    break;
                case FrameKind.Error:
                    var error = FrameStream.ParseJson(frame.Value, AgentJsonContext.Default.ErrorMessage);
                    throw new IOException(error.Message);
                default:
                    throw new IOException($"Unexpected {frame.Value.Kind} frame in a port tunnel.");
            }
        }

        var n = Math.Min(buffer.Length, _pending.Length - _pendingOffset);
        _pending.AsMemory(_pendingOffset, n).CopyTo(buffer);
        _pendingOffset += n;
        return n;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        for (var offset = 0; offset < buffer.Length; offset += FrameStream.ChunkSize)
        {
            await _frames.WriteAsync(FrameKind.Data, buffer.Slice(offset, Math.Min(FrameStream.ChunkSize, buffer.Length - offset)), cancellationToken);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override async ValueTask DisposeAsync()
    {
        await _frames.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _frames.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        base.Dispose(disposing);
    }
}
