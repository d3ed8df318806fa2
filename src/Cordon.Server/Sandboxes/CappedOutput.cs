namespace Cordon.Server.Sandboxes;

/// <summary>Collects a command's output up to a cap, keeping the first and last halves when it overflows, so
/// both how a command started and how it ended survive.</summary>
public sealed class CappedOutput
{
    private readonly byte[] _head;
    private readonly byte[] _tail;
    private int _headLength;
    private long _tailWritten;

    public CappedOutput(long cap)
    {
        var half = (int)Math.Min(cap / 2, int.MaxValue / 2);
        _head = new byte[half];
        _tail = new byte[half];
    }

    public bool Truncated => TotalBytes > _head.Length + _tail.Length;

    public long TotalBytes { get; private set; }

    public void Append(ReadOnlySpan<byte> data)
    {
        TotalBytes += data.Length;
        var take = Math.Min(_head.Length - _headLength, data.Length);
        data[..take].CopyTo(_head.AsSpan(_headLength));
        _headLength += take;
        data = data[take..];

        // The tail is a ring: only its last _tail.Length bytes matter.
        if (data.Length > _tail.Length)
        {
            _tailWritten += data.Length - _tail.Length;
            data = data[^_tail.Length..];
        }

        foreach (var b in data)
        {
            _tail[_tailWritten++ % _tail.Length] = b;
        }
    }

    /// <summary>The kept output as text; a marker says how much was left out in the middle.</summary>
    public string ToText()
    {
        var head = System.Text.Encoding.UTF8.GetString(_head, 0, _headLength);
        if (_tailWritten == 0)
        {
            return head;
        }

        var tailLength = (int)Math.Min(_tailWritten, _tail.Length);
        var start = (int)((_tailWritten - tailLength) % _tail.Length);
        var tail = new byte[tailLength];
        for (var i = 0; i < tailLength; i++)
        {
            tail[i] = _tail[(start + i) % _tail.Length];
        }

        var omitted = TotalBytes - _headLength - tailLength;
        var tailText = System.Text.Encoding.UTF8.GetString(tail);
        return omitted > 0
            ? $"{head}\n[... {omitted} bytes omitted; stream the output to get all of it ...]\n{tailText}"
            : head + tailText;
    }
}
