namespace Cordon.Runtime.Images;

/// <summary>Replays a few peeked bytes before the rest of a stream (to sniff gzip without seeking).</summary>
internal sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream inner) : ReadOnlyStream
{
    private ReadOnlyMemory<byte> _prefix = prefix;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_prefix.IsEmpty)
        {
            var n = Math.Min(buffer.Length, _prefix.Length);
            _prefix[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }

        return await inner.ReadAsync(buffer, cancellationToken);
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (!_prefix.IsEmpty)
        {
            var n = Math.Min(count, _prefix.Length);
            _prefix[..n].Span.CopyTo(buffer.AsSpan(offset));
            _prefix = _prefix[n..];
            return n;
        }

        return inner.Read(buffer, offset, count);
    }
}
