using System.Text;

namespace Cordon.Server.Sandboxes;

/// <summary>Text output kept within a cap of characters: the first half of the cap and the newest half, the
/// middle dropped and said so by one marker, so both how a command started and how it ended survive. Every
/// interface caps output with this one type (a finished command's result, a code run, a background command's
/// log, an MCP tool result), with the same marker.</summary>
/// <remarks>
/// Written text is addressed by absolute character offsets (cursors): <see cref="Read"/> pages through what is
/// kept, skipping the dropped middle. Memory grows with the output, not with the cap: most commands print a few
/// bytes, and a cap-sized buffer per stream would be zeroed for each of them. What it holds is reserved from an
/// <see cref="OutputBudget"/> shared by the whole server, and given back by <see cref="Dispose"/>. Thread-safe.
/// </remarks>
public sealed class OutputCap : IDisposable
{
    private const int FirstBufferSize = 1024;

    private readonly Lock _lock = new();
    private readonly OutputBudget _budget;
    private int _headCap;
    private int _tailCap;
    private readonly StringBuilder _head = new();
    private char[]? _tail;
    private long _tailWritten;
    private long _reserved;

    /// <param name="cap">The most characters kept; at least 2.</param>
    /// <param name="budget">Where the characters kept are reserved from; none when null.</param>
    public OutputCap(long cap, OutputBudget? budget = null)
    {
        var kept = (int)Math.Clamp(cap, 2, int.MaxValue / 2);
        _headCap = kept / 2;
        _tailCap = kept - _headCap;
        _budget = budget ?? OutputBudget.Unlimited;
    }

    /// <summary>Gives what this cap held back to the budget; it keeps no more text afterwards.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _budget.Release(_reserved);
            _reserved = 0;
            _headCap = _head.Length;
            _tailCap = _tail?.Length ?? 0;
        }
    }

    /// <summary>Characters written so far: the cursor at the end.</summary>
    public long Length
    {
        get
        {
            lock (_lock)
            {
                return _head.Length + _tailWritten;
            }
        }
    }

    /// <summary>Characters dropped from the middle so far.</summary>
    public long Omitted
    {
        get
        {
            lock (_lock)
            {
                return Math.Max(0, _tailWritten - _tailCap);
            }
        }
    }

    public bool Truncated => Omitted > 0;

    public void Append(ReadOnlySpan<char> text)
    {
        lock (_lock)
        {
            var take = Math.Min(_headCap - _head.Length, text.Length);
            if (take > 0 && !Reserve(take))
            {
                // The server's budget is spent: the head stops here, and what follows goes to the tail.
                _headCap = _head.Length;
                take = 0;
            }

            if (take > 0)
            {
                _head.Append(text[..take]);
                text = text[take..];
            }

            if (text.IsEmpty)
            {
                return;
            }

            // The tail is a ring holding the newest _tailCap characters (character k of the tail at k % length); it
            // grows with the output up to that size. Of a chunk longer than the ring only its end can stay.
            if (text.Length > _tailCap)
            {
                _tailWritten += text.Length - _tailCap;
                text = text[^_tailCap..];
            }

            EnsureTail(Math.Min(_tailWritten, _tailCap) + text.Length);
            if (_tail is not { Length: > 0 } ring)
            {
                _tailWritten += text.Length; // no room at all: counted as left out
                return;
            }

            while (!text.IsEmpty)
            {
                var at = (int)(_tailWritten % ring.Length);
                var n = Math.Min(ring.Length - at, text.Length);
                text[..n].CopyTo(ring.AsSpan(at));
                _tailWritten += n;
                text = text[n..];
            }
        }
    }

    private bool Reserve(long count)
    {
        if (!_budget.TryReserve(count))
        {
            return false;
        }

        _reserved += count;
        return true;
    }

    /// <summary>Grows the ring (while it is not yet full size) so it holds <paramref name="needed"/> characters in
    /// write order from index 0.</summary>
    private void EnsureTail(long needed)
    {
        if (_tail is { } ring && (ring.Length == _tailCap || ring.Length >= needed))
        {
            return;
        }

        // Until it is full size the ring never wraps (it grows first), so its text starts at index 0; a full-size
        // ring may then wrap, and character k sits at k % size as everywhere else.
        var size = (int)Math.Min(_tailCap, Math.Max(needed, Math.Max(FirstBufferSize, 2L * (_tail?.Length ?? 0))));
        if (!Reserve(size - (_tail?.Length ?? 0)))
        {
            // The budget is spent: the tail stays the size it is (it wraps from now on), which may be none at all.
            _tailCap = _tail?.Length ?? 0;
            return;
        }

        var grown = new char[size];
        if (_tailWritten <= size && _tail is not null)
        {
            TailText().CopyTo(grown);
        }

        _tail = grown;
    }

    /// <summary>The kept tail in write order.</summary>
    private ReadOnlySpan<char> TailText()
    {
        if (_tail is not { } ring || _tailWritten == 0)
        {
            return [];
        }

        var length = (int)Math.Min(_tailWritten, ring.Length);
        if (_tailWritten <= ring.Length)
        {
            return ring.AsSpan(0, length);
        }

        var start = (int)(_tailWritten % ring.Length);
        var text = new char[length];
        ring.AsSpan(start).CopyTo(text);
        ring.AsSpan(0, start).CopyTo(text.AsSpan(ring.Length - start));
        return text;
    }

    /// <summary>The kept output; where the middle was dropped, <see cref="Marker"/> says how much and
    /// <paramref name="howToReadAll"/> how to get it.</summary>
    public string ToText(string howToReadAll)
    {
        lock (_lock)
        {
            var omitted = Math.Max(0, _tailWritten - _tailCap);
            var tail = TailText();
            return omitted > 0
                ? string.Concat(_head.ToString(), Marker(omitted, howToReadAll), tail)
                : string.Concat(_head.ToString(), tail);
        }
    }

    /// <summary>Up to <paramref name="max"/> characters from <paramref name="cursor"/>. A cursor inside the dropped
    /// middle reads from the first kept character after it (<c>Start</c> then says where reading began).</summary>
    public (string Text, long Start, long Next) Read(long cursor, int max)
    {
        lock (_lock)
        {
            var end = _head.Length + _tailWritten;
            var start = Math.Clamp(cursor, 0, end);
            var text = new StringBuilder();
            if (start < _head.Length)
            {
                var n = (int)Math.Min(max, _head.Length - start);
                text.Append(_head.ToString((int)start, n));
                max -= n;
                var next = start + n;
                if (max == 0 || next < _head.Length)
                {
                    return (text.ToString(), start, next);
                }
            }

            // The tail holds offsets [end - kept, end).
            var tail = TailText();
            var tailStart = end - tail.Length;
            var from = Math.Max(Math.Max(start, _head.Length), tailStart);
            if (text.Length == 0)
            {
                start = from;
            }

            var count = (int)Math.Min(max, end - from);
            text.Append(tail.Slice((int)(from - tailStart), count));
            return (text.ToString(), start, from + count);
        }
    }

    /// <summary>The one marker for output left out, wherever output is capped.</summary>
    public static string Marker(long omitted, string howToReadAll) => $"\n[… {omitted} characters left out; {howToReadAll} …]\n";

    /// <summary>Caps one finished text the same way (an MCP tool result, a listing).</summary>
    public static (string Text, bool Truncated) Cap(string text, int max, string howToReadAll)
    {
        var cap = new OutputCap(max);
        cap.Append(text);
        return (cap.ToText(howToReadAll), cap.Truncated);
    }
}
