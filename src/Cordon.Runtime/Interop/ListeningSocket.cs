using System.Runtime.InteropServices;
using System.Text;

namespace Cordon.Runtime.Interop;

/// <summary>A listening unix socket made with plain syscalls, to be handed to a child process.</summary>
/// <remarks>.NET's Socket deletes the socket file when disposed; here our descriptor must close while the
/// file (which the server connects to) and the child's copy of the socket stay.</remarks>
internal static unsafe partial class ListeningSocket
{
    private const int AF_UNIX = 1;
    private const int SOCK_STREAM = 1;
    private const int SOCK_CLOEXEC = 0x80000;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(int fd, byte* address, int length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int listen(int fd, int backlog);

    /// <summary>Binds and listens at <paramref name="path"/> (mode 0600: only root connects); returns the descriptor
    /// (close-on-exec).</summary>
    public static int Create(string path, int backlog)
    {
        var bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length >= 108)
        {
            throw new IOException($"The socket path {path} is longer than a unix socket address allows (107 bytes); choose a shorter data directory.");
        }

        var fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new IOException("socket: " + Syscalls.LastError());
        }

        var address = stackalloc byte[110];
        address[0] = AF_UNIX; // sa_family, little-endian u16
        address[1] = 0;
        bytes.CopyTo(new Span<byte>(address + 2, 108));
        address[2 + bytes.Length] = 0;
        if (bind(fd, address, 2 + bytes.Length + 1) != 0 || Syscalls.chmod(path, 0b110_000_000) != 0 || listen(fd, backlog) != 0)
        {
            var error = Syscalls.LastError();
            Syscalls.close(fd);
            throw new IOException($"bind/listen {path}: {error}");
        }

        return fd;
    }
}
