using System.Globalization;
using System.Text;

namespace Cordon.Server.Network;

/// <summary>Forwards a sandbox's HTTP/1.1 requests to their server, one after another on one connection, changing
/// only their headers: <see cref="Interception.SetHeaders"/> replace any of the same name, and each placeholder of
/// <see cref="Interception.Substitutions"/> in a header value becomes its secret's value. Bodies pass unchanged;
/// their framing (Content-Length or chunked) is followed only to find where the next request starts. Answers go
/// back unread by another path.</summary>
/// <remarks>
/// Refused with an answer of its own, before anything was forwarded: a head larger than <see cref="MaxHeadBytes"/>
/// (431), a malformed one or one framed two ways (400: a request the proxy and the server could read differently),
/// a <c>Host</c> other than the name the TLS connection was opened for (421: a secret goes only to its host).
/// Anything else after the first request ends the connection.
/// </remarks>
public sealed class HttpRewriter(string host, Interception interception)
{
    public const int MaxHeadBytes = 64 * 1024;

    private const int MaxLineBytes = 8 * 1024;

    /// <summary>What a connection holds while it waits: most heads fit; a larger one grows it up to
    /// <see cref="MaxHeadBytes"/>.</summary>
    private const int InitialBufferBytes = 8 * 1024;

    private byte[] _buffer = new byte[InitialBufferBytes];
    private int _start;
    private int _end;

    /// <summary>Forwards requests from <paramref name="client"/> to <paramref name="server"/> until the client stops
    /// sending, a request upgrades the connection (then bytes pass unchanged), or one is refused.</summary>
    /// <returns>Why the last request was refused, or null.</returns>
    public async Task<string?> ForwardAsync(Stream client, Stream server, CancellationToken cancellationToken)
    {
        for (var first = true; ; first = false)
        {
            var head = await ReadHeadAsync(client, cancellationToken);
            if (head is null)
            {
                return _end - _start >= MaxHeadBytes
                    ? await RefuseAsync(client, first, 431, "Request Header Fields Too Large", $"the request's head is larger than {MaxHeadBytes} bytes")
                    : null;
            }

            if (!Request.TryParse(head, out var request, out var problem))
            {
                return await RefuseAsync(client, first, 400, "Bad Request", problem!);
            }

            if (!string.Equals(request.Host, host, StringComparison.OrdinalIgnoreCase))
            {
                return await RefuseAsync(client, first, 421, "Misdirected Request",
                    $"the request names host '{request.Host}' on a connection opened for '{host}'; open a connection to that host instead");
            }

            if (interception.Refusal is { } refusal)
            {
                return await RefuseAsync(client, first, 403, "Forbidden", refusal);
            }

            await server.WriteAsync(request.Rewrite(interception), cancellationToken);
            if (request.Upgrade)
            {
                await server.WriteAsync(_buffer.AsMemory(_start, _end - _start), cancellationToken);
                _start = _end = 0;
                await client.CopyToAsync(server, cancellationToken);
                return null;
            }

            if (request.Chunked)
            {
                await CopyChunkedAsync(client, server, cancellationToken);
            }
            else
            {
                await CopyAsync(client, server, request.ContentLength, cancellationToken);
            }

            await server.FlushAsync(cancellationToken);
        }
    }

    /// <summary>Reads up to the blank line that ends a head; null at the end of input, or when the head is too large.</summary>
    private async Task<byte[]?> ReadHeadAsync(Stream client, CancellationToken cancellationToken)
    {
        var from = _start;
        while (true)
        {
            var at = _buffer.AsSpan(from, _end - from).IndexOf("\r\n\r\n"u8);
            if (at >= 0)
            {
                var length = from + at + 4 - _start;
                var head = _buffer.AsSpan(_start, length).ToArray();
                _start += length;
                return head;
            }

            if (_end - _start >= MaxHeadBytes)
            {
                return null;
            }

            from = Math.Max(_start, _end - 3) - _start; // where a terminator split across reads starts, after compacting
            Compact();
            if (_end == _buffer.Length)
            {
                Array.Resize(ref _buffer, Math.Min(_buffer.Length * 2, MaxHeadBytes));
            }

            var read = await client.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                _start = _end = 0;
                return null;
            }

            _end += read;
        }
    }

    private void Compact()
    {
        if (_start == 0)
        {
            return;
        }

        _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
        _end -= _start;
        _start = 0;
    }

    /// <summary>Copies <paramref name="count"/> bytes, those already read first.</summary>
    private async Task CopyAsync(Stream client, Stream server, long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            if (_start == _end)
            {
                _start = _end = 0;
                var read = await client.ReadAsync(_buffer.AsMemory(0, (int)Math.Min(_buffer.Length, count)), cancellationToken);
                if (read == 0)
                {
                    throw new EndOfStreamException("The request's body ended early.");
                }

                _end = read;
            }

            var take = (int)Math.Min(count, _end - _start);
            await server.WriteAsync(_buffer.AsMemory(_start, take), cancellationToken);
            _start += take;
            count -= take;
        }
    }

    /// <summary>Copies a chunked body: each size line and its data, then the trailer up to its blank line.</summary>
    private async Task CopyChunkedAsync(Stream client, Stream server, CancellationToken cancellationToken)
    {
        while (true)
        {
            var line = await ReadLineAsync(client, server, cancellationToken);
            var digits = line.Split(';')[0].Trim();
            if (!long.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var size) || size < 0 || digits.Length is 0 or > 15)
            {
                throw new InvalidDataException("A chunk's size line is malformed.");
            }

            if (size == 0)
            {
                while ((await ReadLineAsync(client, server, cancellationToken)).Length > 0)
                {
                }

                return;
            }

            await CopyAsync(client, server, size + 2, cancellationToken);
        }
    }

    /// <summary>Forwards one line (up to its CRLF) and returns it without the CRLF.</summary>
    private async Task<string> ReadLineAsync(Stream client, Stream server, CancellationToken cancellationToken)
    {
        while (true)
        {
            var at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
            if (at >= 0)
            {
                var line = Encoding.ASCII.GetString(_buffer, _start, at);
                await server.WriteAsync(_buffer.AsMemory(_start, at + 2), cancellationToken);
                _start += at + 2;
                return line;
            }

            if (_end - _start >= MaxLineBytes)
            {
                throw new InvalidDataException("A chunk's line is too long.");
            }

            Compact();
            var read = await client.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
            if (read == 0)
            {
                throw new EndOfStreamException("The request's body ended early.");
            }

            _end += read;
        }
    }

    /// <summary>Answers a refused request itself when nothing was forwarded on the connection yet; else the
    /// connection just ends (an answer of its own could land among the server's).</summary>
    private static async Task<string> RefuseAsync(Stream client, bool first, int status, string reason, string why)
    {
        if (first)
        {
            var body = $"Cordon's egress proxy refused this request: {why}.\n";
            var answer = $"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\nX-Cordon-Refused: egress-proxy\r\n\r\n{body}";
            await client.WriteAsync(Encoding.UTF8.GetBytes(answer));
            await client.FlushAsync();
        }

        return why;
    }

    /// <summary>A request's head, parsed as far as forwarding needs.</summary>
    private sealed record Request(string Line, List<(string Name, string Value)> Headers, string? Host, long ContentLength, bool Chunked, bool Upgrade)
    {
        public static bool TryParse(byte[] head, out Request request, out string? problem)
        {
            request = null!;
            var text = Encoding.Latin1.GetString(head, 0, head.Length - 4);
            var lines = text.Split("\r\n");
            var parts = lines[0].Split(' ');
            if (parts.Length != 3 || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal) || parts[0].Length == 0)
            {
                problem = "it is not an HTTP/1.x request";
                return false;
            }

            var headers = new List<(string, string)>();
            foreach (var line in lines.Skip(1))
            {
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon <= 0 || line[0] is ' ' or '\t' || line[..colon].Any(c => c is ' ' or '\t'))
                {
                    problem = "a header line is malformed (folded lines are not accepted)";
                    return false;
                }

                headers.Add((line[..colon], line[(colon + 1)..].Trim(' ', '\t')));
            }

            var hosts = headers.Where(h => h.Item1.Equals("host", StringComparison.OrdinalIgnoreCase)).Select(h => h.Item2).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            var lengths = headers.Where(h => h.Item1.Equals("content-length", StringComparison.OrdinalIgnoreCase)).Select(h => h.Item2).Distinct().ToList();
            var encodings = headers.Where(h => h.Item1.Equals("transfer-encoding", StringComparison.OrdinalIgnoreCase)).Select(h => h.Item2).ToList();
            if (hosts.Count != 1)
            {
                problem = "it must name exactly one Host";
                return false;
            }

            if (encodings.Count > 0 && lengths.Count > 0)
            {
                problem = "it has both Content-Length and Transfer-Encoding";
                return false;
            }

            var chunked = encodings.Count > 0;
            if (chunked && !string.Join(",", encodings).Split(',')[^1].Trim().Equals("chunked", StringComparison.OrdinalIgnoreCase))
            {
                problem = "its Transfer-Encoding does not end in chunked";
                return false;
            }

            long length = 0;
            if (lengths.Count > 1 || (lengths.Count == 1 && (!long.TryParse(lengths[0], NumberStyles.None, CultureInfo.InvariantCulture, out length) || length < 0)))
            {
                problem = "its Content-Length is malformed";
                return false;
            }

            var upgrade = parts[0] == "CONNECT" || headers.Any(h => h.Item1.Equals("upgrade", StringComparison.OrdinalIgnoreCase));
            var name = hosts[0];
            var port = name.LastIndexOf(':');
            if (port > 0 && !name.EndsWith(']') && int.TryParse(name[(port + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number == 443)
            {
                name = name[..port];
            }

            request = new Request(lines[0], headers, EgressPolicy.NormalizeName(name), length, chunked, upgrade);
            problem = null;
            return true;
        }

        /// <summary>The head as forwarded: the rule's headers replace any of the same name, placeholders become values.</summary>
        public byte[] Rewrite(Interception interception)
        {
            var output = new StringBuilder(Line).Append("\r\n");
            foreach (var (name, value) in Headers)
            {
                if (interception.SetHeaders.Any(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)))
                {
                    continue;
                }

                var filled = value;
                foreach (var (placeholder, secret) in interception.Substitutions)
                {
                    filled = filled.Replace(placeholder, secret, StringComparison.Ordinal);
                }

                output.Append(name).Append(": ").Append(filled).Append("\r\n");
            }

            foreach (var (name, value) in interception.SetHeaders)
            {
                output.Append(name).Append(": ").Append(value).Append("\r\n");
            }

            return Encoding.Latin1.GetBytes(output.Append("\r\n").ToString());
        }
    }
}
