using System.Runtime.InteropServices;

namespace Cordon.Runtime.Interop;

/// <summary>Copy-on-write clones of files (FICLONE, a reflink on XFS and btrfs), and what makes a mounted file
/// system's image consistent for the instant a clone takes: its dirty data written out (syncfs), and where writers
/// may still run, the file system frozen (FIFREEZE/FITHAW).</summary>
internal static partial class FileClone
{
    private const ulong FICLONE = 0x40049409;
    private const ulong FIFREEZE = 0xC0045877;
    private const ulong FITHAW = 0xC0045878;
    private const int O_RDONLY = 0;
    private const int O_WRONLY = 1;
    private const int O_CREAT = 0x40;
    private const int O_EXCL = 0x80;
    private const int O_DIRECTORY = 0x10000;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, ulong request, nint argument);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int syncfs(int fd);

    /// <summary>Makes <paramref name="destination"/> (new, mode 0600) share every block of <paramref name="source"/>:
    /// no data is copied, later writes to either copy only what they change.</summary>
    /// <exception cref="IOException">The file system cannot clone (EOPNOTSUPP, EXDEV) or refused.</exception>
    public static void Clone(string source, string destination)
    {
        var from = Syscalls.open(source, O_RDONLY | Syscalls.O_CLOEXEC | Syscalls.O_NOFOLLOW, 0);
        if (from < 0)
        {
            throw new IOException($"open {source}: {Syscalls.LastError()}");
        }

        try
        {
            var to = Syscalls.open(destination, O_WRONLY | O_CREAT | O_EXCL | Syscalls.O_CLOEXEC | Syscalls.O_NOFOLLOW, 0b110_000_000);
            if (to < 0)
            {
                throw new IOException($"create {destination}: {Syscalls.LastError()}");
            }

            try
            {
                if (ioctl(to, FICLONE, from) != 0)
                {
                    var error = Syscalls.LastError();
                    Syscalls.close(to);
                    to = -1;
                    File.Delete(destination);
                    throw new IOException($"FICLONE {source} → {destination}: {error}");
                }
            }
            finally
            {
                if (to >= 0)
                {
                    Syscalls.close(to);
                }
            }
        }
        finally
        {
            Syscalls.close(from);
        }
    }

    /// <summary>Whether files in <paramref name="directory"/> can be cloned (tried on a scratch file).</summary>
    public static bool Supported(string directory)
    {
        var source = Path.Combine(directory, ".clone-probe-" + Environment.ProcessId);
        var copy = source + ".copy";
        try
        {
            File.WriteAllBytes(source, new byte[4096]);
            Clone(source, copy);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        finally
        {
            File.Delete(source);
            File.Delete(copy);
        }
    }

    /// <summary>Writes out the dirty data and metadata of the file system mounted at <paramref name="mountPoint"/>
    /// (through its loop device, into the image file: a clone of the file then holds them).</summary>
    public static void Sync(string mountPoint)
    {
        var fd = OpenMountPoint(mountPoint);
        try
        {
            if (syncfs(fd) != 0)
            {
                throw new IOException($"syncfs {mountPoint}: {Syscalls.LastError()}");
            }
        }
        finally
        {
            Syscalls.close(fd);
        }
    }

    /// <summary>Freezes the file system mounted at <paramref name="mountPoint"/>: its dirty data is written out and
    /// every writer blocks until <see cref="Thaw"/>. It waits for three RCU grace periods: 25–50 ms on a busy 2-core
    /// host.</summary>
    public static void Freeze(string mountPoint) => FreezeOrThaw(mountPoint, FIFREEZE, "FIFREEZE");

    /// <summary>Thaws a frozen file system; a file system that is not frozen is left as it is.</summary>
    /// <returns>False when it was not frozen.</returns>
    public static bool Thaw(string mountPoint)
    {
        try
        {
            FreezeOrThaw(mountPoint, FITHAW, "FITHAW");
            return true;
        }
        catch (IOException ex) when (ex.HResult == Syscalls.EINVAL)
        {
            return false;
        }
    }

    private static void FreezeOrThaw(string mountPoint, ulong request, string name)
    {
        var fd = OpenMountPoint(mountPoint);
        try
        {
            if (ioctl(fd, request, 0) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new IOException($"{name} {mountPoint}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
            }
        }
        finally
        {
            Syscalls.close(fd);
        }
    }

    private static int OpenMountPoint(string mountPoint)
    {
        var fd = Syscalls.open(mountPoint, O_RDONLY | O_DIRECTORY | Syscalls.O_CLOEXEC | Syscalls.O_NOFOLLOW, 0);
        return fd >= 0 ? fd : throw new IOException($"open {mountPoint}: {Syscalls.LastError()}");
    }
}
