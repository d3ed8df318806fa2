using System.Buffers.Binary;
using System.Text;

namespace Cordon.Server.Network;

/// <summary>Reads the name a connection asks for from its first bytes, without consuming or changing them: the
/// server_name of a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3), or the Host header of an HTTP/1 request.</summary>
public static class NameReader
{
    /// <param name="Complete">Enough was read to decide (a name, or certainly none); else read more.</param>
    public readonly record struct Result(bool Complete, string? Name, bool Tls);

    private static readonly Result NeedMore = new(false, null, false);

    public static Result Read(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return NeedMore;
        }

        return data[0] == 0x16 ? ReadClientHello(data) : ReadHttpHost(data);
    }

    private static Result ReadClientHello(ReadOnlySpan<byte> data)
    {
        const int RecordHeader = 5;
        if (data.Length < RecordHeader)
        {
            return NeedMore;
        }

        var recordLength = BinaryPrimitives.ReadUInt16BigEndian(data[3..5]);
        if (data.Length < RecordHeader + recordLength)
        {
            return NeedMore;
        }

        var none = new Result(true, null, true);
        var hello = data.Slice(RecordHeader, recordLength);

        // handshake type (1, client_hello), length (3), version (2), random (32)
        if (hello.Length < 38 || hello[0] != 0x01)
        {
            return none;
        }

        var at = 38;
        if (!Skip(hello, ref at, 1) || !Skip(hello, ref at, 2) || !Skip(hello, ref at, 1))
        {
            return none; // session id, cipher suites, compression methods
        }

        if (at + 2 > hello.Length)
        {
            return none;
        }

        var extensionsEnd = Math.Min(hello.Length, at + 2 + BinaryPrimitives.ReadUInt16BigEndian(hello[at..]));
        at += 2;
        while (at + 4 <= extensionsEnd)
        {
            var type = BinaryPrimitives.ReadUInt16BigEndian(hello[at..]);
            var length = BinaryPrimitives.ReadUInt16BigEndian(hello[(at + 2)..]);
            at += 4;
            if (at + length > extensionsEnd)
            {
                return none;
            }

            if (type == 0) // server_name: list length (2), then entries of type (1), length (2), name
            {
                var list = hello.Slice(at, length);
                var entry = 2;
                while (entry + 3 <= list.Length)
                {
                    var nameLength = BinaryPrimitives.ReadUInt16BigEndian(list[(entry + 1)..]);
                    if (entry + 3 + nameLength > list.Length)
                    {
                        return none;
                    }

                    if (list[entry] == 0)
                    {
                        var name = Encoding.ASCII.GetString(list.Slice(entry + 3, nameLength));
                        return new Result(true, IsPlausibleName(name) ? name : null, true);
                    }

                    entry += 3 + nameLength;
                }

                return none;
            }

            at += length;
        }

        return none;
    }

    /// <summary>Skips a vector whose length takes <paramref name="lengthBytes"/> bytes.</summary>
    private static bool Skip(ReadOnlySpan<byte> data, ref int at, int lengthBytes)
    {
        if (at + lengthBytes > data.Length)
        {
            return false;
        }

        var length = lengthBytes == 1 ? data[at] : BinaryPrimitives.ReadUInt16BigEndian(data[at..]);
        at += lengthBytes + length;
        return at <= data.Length;
    }

    private static Result ReadHttpHost(ReadOnlySpan<byte> data)
    {
        var end = data.IndexOf("\r\n\r\n"u8);
        var head = end < 0 ? data : data[..end];
        var firstLine = head.IndexOf("\r\n"u8);
        if (firstLine < 0)
        {
            // A request line is letters, a space, a target: anything else is not HTTP.
            return end < 0 && LooksLikeMethod(head) ? NeedMore : new Result(true, null, false);
        }

        if (!LooksLikeMethod(head[..firstLine]))
        {
            return new Result(true, null, false);
        }

        foreach (var line in Encoding.Latin1.GetString(head[(firstLine + 2)..]).Split("\r\n"))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line.AsSpan(0, colon).Trim().Equals("host", StringComparison.OrdinalIgnoreCase))
            {
                var host = line[(colon + 1)..].Trim();
                var port = host.LastIndexOf(':');
                if (port > 0 && !host.EndsWith(']'))
                {
                    host = host[..port];
                }

                return new Result(true, IsPlausibleName(host) ? host : null, false);
            }
        }

        return end < 0 ? NeedMore : new Result(true, null, false);
    }

    private static bool LooksLikeMethod(ReadOnlySpan<byte> line)
    {
        var space = line.IndexOf((byte)' ');
        var method = space < 0 ? line : line[..space];
        if (method.IsEmpty || method.Length > 16)
        {
            return false;
        }

        foreach (var b in method)
        {
            if (b is < (byte)'A' or > (byte)'Z')
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsPlausibleName(string name)
        => name.Length is > 0 and <= 253 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');
}
