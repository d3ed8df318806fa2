namespace Cordon.Server.Sandboxes;

/// <summary>Collects a command's output up to a cap, keeping the first and last halves when it overflows, so
/// both how a command started and how it ended survive.</summary>
/// <remarks>Memory grows with the output, not with the cap: most commands print a few bytes, and two
/// cap-sized buffers per stream (8 MiB per command at the default cap) made every command zero that much
/// and start a full background collection of the server's heap.</remarks>
public sealed class CappedOutput
{
    private const int FirstBufferSize = 4096;

    private readonly int _half;
    private byte[] _head = [];
    private int _headLength;
    private byte[]? _tail;
    private long _tailWritten;

    public CappedOutput(long cap)
    {
        _half = (int)Math.Min(cap / 2, int.MaxValue / 2);
    }

    public bool Truncated => TotalBytes > 2L * _half;

    public long TotalBytes { get; private set; }

    public void Append(ReadOnlySpan<byte> data)
    {
        TotalBytes += data.Length;
        var take = Math.Min(_half - _headLength, data.Length);
        if (take > 0)
        {
            if (_headLength + take > _head.Length)
            {
                Array.Resize(ref _head, (int)Math.Min(_half, Math.Max(_headLength + take, Math.Max(FirstBufferSize, 2L * _head.Length))));
            }

            data[..take].CopyTo(_head.AsSpan(_headLength));
            _headLength += take;
            data = data[take..];
        }

        if (data.IsEmpty || _half == 0)
        {
            return;
        }

        // The tail is a ring: only its last _half bytes matter.
        var tail = _tail ??= new byte[_half];
        if (data.Length > tail.Length)
        {
            _tailWritten += data.Length - tail.Length;
            data = data[^tail.Length..];
        }

        while (!data.IsEmpty)
        {
            var at = (int)(_tailWritten % tail.Length);
            var n = Math.Min(tail.Length - at, data.Length);
            data[..n].CopyTo(tail.AsSpan(at));
            _tailWritten += n;
            data = data[n..];
        }
    }

    /// <summary>The kept output as text; a marker says how much was left out in the middle.</summary>
    public string ToText()
    {
        var head = System.Text.Encoding.UTF8.GetString(_head, 0, _headLength);
        if (_tail is not { } ring || _tailWritten == 0)
        {
            return head;
        }

        var tailLength = (int)Math.Min(_tailWritten, ring.Length);
        var start = (int)((_tailWritten - tailLength) % ring.Length);
        var tail = new byte[tailLength];
        var first = Math.Min(tailLength, ring.Length - start);
        ring.AsSpan(start, first).CopyTo(tail);
        ring.AsSpan(0, tailLength - first).CopyTo(tail.AsSpan(first));

        var omitted = TotalBytes - _headLength - tailLength;
        var tailText = System.Text.Encoding.UTF8.GetString(tail);
        return omitted > 0
            ? $"{head}\n[... {omitted} bytes omitted; stream the output to get all of it ...]\n{tailText}"
            : head + tailText;
    }
}
