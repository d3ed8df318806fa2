using System.Globalization;

namespace Cordon.Runtime.Network;

/// <summary>Whether a network namespace still has sockets someone holds, read from inside it: a destroyed sandbox's
/// namespace goes to the next sandbox only when none is left.</summary>
/// <remarks>
/// Every process of a destroyed sandbox is dead, but a socket can outlive them: a descriptor in flight in a unix
/// socket that is itself unreachable lives until the kernel's garbage collector finds it, and a listener kept that
/// way would answer the next tenant at the same address or abstract name.
/// <para>The namespace's own count of sockets per protocol (<c>/proc/net/protocols</c>) answers at once: a namespace
/// without a socket (the usual case) is clean. Only when TCP counts some are its tables read (they walk the host's
/// whole connection hash, ~1 ms): a socket with an inode is one some file (a descriptor, or one in flight) refers
/// to; the kernel's own leftovers of closed connections (FIN_WAIT, LAST_ACK and the like) have none, belong to no
/// one and only finish closing.</para>
/// </remarks>
internal static class NamespaceSockets
{
    /// <summary>Sockets counted per protocol in a <c>/proc/net/protocols</c> text: TCP's apart, the others summed.</summary>
    public static (int Tcp, int Others) Counted(string protocols)
    {
        int tcp = 0, others = 0;
        foreach (var line in protocols.Split('\n').Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0)
            {
                continue;
            }

            // A line without a readable count counts as a socket: unreadable is not empty.
            var count = fields.Length > 2 && int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 1;
            if (fields[0] is "TCP" or "TCPv6")
            {
                tcp += count;
            }
            else
            {
                others += count;
            }
        }

        return (tcp, others);
    }

    /// <summary>How many sockets of a <c>/proc/net/tcp</c> or <c>tcp6</c> table (header line first) some file refers
    /// to (a nonzero inode, the tenth field).</summary>
    public static int HeldTcp(string table)
    {
        var held = 0;
        foreach (var line in table.Split('\n').Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0)
            {
                continue;
            }

            if (fields.Length <= 9 || !ulong.TryParse(fields[9], NumberStyles.None, CultureInfo.InvariantCulture, out var inode) || inode != 0)
            {
                held++;
            }
        }

        return held;
    }

    /// <summary>Sockets held in the namespace the calling thread is in (<c>/proc/thread-self/net</c>).</summary>
    public static int HeldHere()
    {
        var (tcp, others) = Counted(File.ReadAllText("/proc/thread-self/net/protocols"));
        if (others > 0 || tcp == 0)
        {
            return others;
        }

        return HeldTcp(File.ReadAllText("/proc/thread-self/net/tcp")) + HeldTcp(File.ReadAllText("/proc/thread-self/net/tcp6"));
    }
}
