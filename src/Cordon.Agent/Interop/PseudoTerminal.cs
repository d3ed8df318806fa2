using System.Runtime.InteropServices;

namespace Cordon.Agent.Interop;

/// <summary>The master side of a pseudo-terminal: open, read, write, resize.</summary>
internal static unsafe class PseudoTerminal
{
    /// <summary>Opens a new pty; returns the master's fd (close-on-exec) and the terminal device's path.</summary>
    /// <exception cref="SpawnException">The pty could not be opened or prepared.</exception>
    public static (int Master, string Device) Open()
    {
        var master = Libc.posix_openpt(Libc.O_RDWR | Libc.O_NOCTTY | Libc.O_CLOEXEC);
        if (master < 0)
        {
            throw new SpawnException(Marshal.GetLastPInvokeError());
        }

        var name = stackalloc byte[128];
        if (Libc.grantpt(master) != 0 || Libc.unlockpt(master) != 0 || Libc.ptsname_r(master, name, 128) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            Libc.close(master);
            throw new SpawnException(errno);
        }

        return (master, new string((sbyte*)name));
    }

    /// <summary>Blocking read; 0 once nobody holds the terminal side any more.</summary>
    public static int Read(int master, byte[] buffer)
    {
        while (true)
        {
            nint n;
            fixed (byte* p = buffer)
            {
                n = Libc.read(master, p, buffer.Length);
            }

            if (n >= 0)
            {
                return (int)n;
            }

            if (Marshal.GetLastPInvokeError() != Libc.EINTR)
            {
                return 0;
            }
        }
    }

    public static void Write(int master, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            for (var offset = 0; offset < data.Length;)
            {
                var n = Libc.write(master, p + offset, data.Length - offset);
                if (n <= 0)
                {
                    return;
                }

                offset += (int)n;
            }
        }
    }

    public static void Resize(int master, int cols, int rows)
    {
        var window = new Libc.WindowSize { Cols = (ushort)Math.Clamp(cols, 1, 1000), Rows = (ushort)Math.Clamp(rows, 1, 1000) };
        Libc.ioctl(master, Libc.TIOCSWINSZ, &window);
    }
}
