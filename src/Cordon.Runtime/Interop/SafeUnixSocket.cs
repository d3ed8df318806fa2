using System.Net.Sockets;

namespace Cordon.Runtime.Interop;

/// <summary>Connects to an agent's unix socket without following symlinks.</summary>
/// <remarks>
/// SECURITY: the OCI driver binds agent sockets on the host, in a root-owned directory the sandbox cannot
/// see; this is defence in depth for any runtime whose socket lives where a sandbox could replace it with a
/// symlink to a host socket. The path is opened with O_PATH|O_NOFOLLOW, checked to be a socket, and
/// connected through /proc/self/fd/N, which names that inode and nothing else.
/// </remarks>
internal static class SafeUnixSocket
{
    public static async ValueTask<Socket> ConnectAsync(string path, CancellationToken cancellationToken)
    {
        var fd = Syscalls.open(path, Syscalls.O_PATH | Syscalls.O_NOFOLLOW | Syscalls.O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new SocketException((int)SocketError.AddressNotAvailable, $"agent socket unavailable: {Syscalls.LastError()}");
        }

        try
        {
            if (Syscalls.fstat(fd, out var st) != 0 || (st.Mode & Syscalls.S_IFMT) != Syscalls.S_IFSOCK)
            {
                throw new SocketException((int)SocketError.AddressNotAvailable, "agent socket path is not a socket");
            }

            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint($"/proc/self/fd/{fd}"), cancellationToken);
                return socket;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        finally
        {
            Syscalls.close(fd);
        }
    }
}
