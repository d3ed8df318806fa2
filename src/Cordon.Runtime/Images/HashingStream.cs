using System.Security.Cryptography;

namespace Cordon.Runtime.Images;

/// <summary>Feeds every byte read through it into a hash.</summary>
internal sealed class HashingStream(Stream inner, IncrementalHash hash) : ReadOnlyStream
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken);
        hash.AppendData(buffer.Span[..n]);
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = inner.Read(buffer, offset, count);
        hash.AppendData(buffer, offset, n);
        return n;
    }
}
