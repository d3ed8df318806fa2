using System.Globalization;

namespace Cordon.Runtime.Network;

/// <summary>Whether a network namespace still has sockets someone holds, from its <c>/proc/net</c> tables, read
/// from inside it: a destroyed sandbox's namespace goes to the next sandbox only when none is left.</summary>
/// <remarks>
/// Every process of a destroyed sandbox is dead, but a socket can outlive them: a descriptor in flight in a unix
/// socket that is itself unreachable lives until the kernel's garbage collector finds it, and a listener kept that
/// way would answer the next tenant at the same address or abstract name. A socket with an inode is one some file
/// (a descriptor, or one in flight) refers to; the kernel's own leftovers of closed TCP connections (TIME_WAIT,
/// FIN_WAIT and the like) have none, belong to no one and only finish closing.
/// </remarks>
internal static class NamespaceSockets
{
    /// <summary>The tables, each with the index of its inode column (fields split on spaces).</summary>
    public static readonly IReadOnlyList<(string File, int InodeField)> Tables =
    [
        ("tcp", 9), ("tcp6", 9), ("udp", 9), ("udp6", 9), ("udplite", 9), ("udplite6", 9),
        ("raw", 9), ("raw6", 9), ("icmp", 9), ("icmp6", 9), ("unix", 6), ("packet", 8),
    ];

    /// <summary>How many sockets of one table (its text, header line first) some file refers to.</summary>
    public static int Held(string table, int inodeField)
    {
        var held = 0;
        foreach (var line in table.Split('\n').Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0)
            {
                continue;
            }

            // A line too short to have the column is counted as held: unreadable is not empty.
            if (fields.Length <= inodeField || !ulong.TryParse(fields[inodeField], NumberStyles.None, CultureInfo.InvariantCulture, out var inode) || inode != 0)
            {
                held++;
            }
        }

        return held;
    }

    /// <summary>Sockets held in the namespace the calling thread is in (<c>/proc/thread-self/net</c>).</summary>
    public static int HeldHere()
    {
        var held = 0;
        foreach (var (file, field) in Tables)
        {
            var path = "/proc/thread-self/net/" + file;
            if (File.Exists(path))
            {
                held += Held(File.ReadAllText(path), field);
            }
        }

        return held;
    }
}
