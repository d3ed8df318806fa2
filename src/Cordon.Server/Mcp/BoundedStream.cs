namespace Cordon.Server.Mcp;

/// <summary>Reads at most <c>limit</c> bytes of another stream and then ends, noting whether the other stream had
/// more (<see cref="Exceeded"/>): how a reader of a file whose size cannot be trusted stays bounded.</summary>
internal sealed class BoundedStream(Stream inner, long limit) : Stream
{
    private long _read;

    /// <summary>The inner stream held more than the limit.</summary>
    public bool Exceeded { get; private set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_read >= limit)
        {
            // One byte more tells whether the file went on.
            Exceeded = Exceeded || await inner.ReadAsync(new byte[1], cancellationToken) > 0;
            return 0;
        }

        var read = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, limit - _read)], cancellationToken);
        _read += read;
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
