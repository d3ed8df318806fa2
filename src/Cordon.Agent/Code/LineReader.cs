namespace Cordon.Agent.Code;

/// <summary>Splits a stream into newline-terminated lines without the newline, refusing lines longer than a limit.</summary>
internal sealed class LineReader(Stream stream, int maxLineBytes)
{
    private byte[] _buffer = new byte[64 << 10];
    private int _start;
    private int _end;

    /// <summary>The next line, or null at end of stream (a last line without newline is dropped: it was cut off).</summary>
    /// <exception cref="InvalidDataException">A line is longer than the limit.</exception>
    public async ValueTask<ReadOnlyMemory<byte>?> ReadLineAsync()
    {
        var scanned = _start;
        while (true)
        {
            var newline = _buffer.AsSpan(scanned, _end - scanned).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var line = _buffer.AsMemory(_start, scanned + newline - _start);
                _start = scanned + newline + 1;
                return line;
            }

            scanned = _end;
            if (_end - _start >= maxLineBytes)
            {
                throw new InvalidDataException($"A line is longer than {maxLineBytes} bytes.");
            }

            if (_start > 0)
            {
                // The line handed out before this call is no longer needed: reuse its room.
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                scanned -= _start;
                _end -= _start;
                _start = 0;
            }

            if (_end == _buffer.Length)
            {
                Array.Resize(ref _buffer, Math.Min(_buffer.Length * 2, maxLineBytes + 1));
            }

            var n = await stream.ReadAsync(_buffer.AsMemory(_end));
            if (n == 0)
            {
                return null;
            }

            _end += n;
        }
    }
}
