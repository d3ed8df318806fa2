using System.Runtime.InteropServices;

namespace Cordon.Runtime.Interop;

/// <summary>Raw Linux calls the runtime needs and .NET does not wrap: the new mount API (idmapped
/// layers), mount/umount, ownership and the descriptor tricks for connecting safely to a socket a
/// sandbox can touch.</summary>
/// <remarks>Every P/Invoke of the server side lives in this folder.</remarks>
internal static unsafe partial class Syscalls
{
    public const int AT_FDCWD = -100;
    public const uint AT_EMPTY_PATH = 0x1000;
    public const uint AT_RECURSIVE = 0x8000;
    public const uint AT_SYMLINK_NOFOLLOW = 0x100;
    public const uint OPEN_TREE_CLONE = 1;
    public const uint OPEN_TREE_CLOEXEC = 0x80000;
    public const uint MOVE_MOUNT_F_EMPTY_PATH = 0x4;
    public const ulong MOUNT_ATTR_RDONLY = 0x1;
    public const ulong MOUNT_ATTR_NOSUID = 0x2;
    public const ulong MOUNT_ATTR_NODEV = 0x4;
    public const ulong MOUNT_ATTR_IDMAP = 0x00100000;
    public const int MNT_DETACH = 2;
    public const ulong MS_RDONLY = 1;
    public const ulong MS_NOSUID = 2;
    public const ulong MS_NODEV = 4;
    public const ulong MS_BIND = 4096;
    public const ulong MS_MOVE = 8192;
    public const ulong MS_REC = 16384;
    public const ulong MS_PRIVATE = 1 << 18;

    public const int O_PATH = 0x200000;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_CLOEXEC = 0x80000;
    public const int O_RDONLY = 0;

    private const long SYS_open_tree = 428;
    private const long SYS_move_mount = 429;
    private const long SYS_mount_setattr = 442;

    public const int EINVAL = 22;
    public const int ENOENT = 2;
    public const int EBUSY = 16;

    [StructLayout(LayoutKind.Sequential)]
    public struct MountAttr
    {
        public ulong AttrSet;
        public ulong AttrClr;
        public ulong Propagation;
        public ulong UsernsFd;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long a1, long a2, long a3, long a4, long a5);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mount(string? source, string target, string? fstype, ulong flags, string? data);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int umount2(string target, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    private const ulong STATX_ATTR_MOUNT_ROOT = 0x2000;

    /// <summary>Whether <paramref name="path"/> is itself a mount point: asked of the kernel for that path alone
    /// (statx's STATX_ATTR_MOUNT_ROOT, Linux 5.8+), not by reading the mount table, which grows with every sandbox.</summary>
    public static bool IsMountPoint(string path)
    {
        var buffer = stackalloc byte[256];
        if (statx(AT_FDCWD, path, (int)AT_SYMLINK_NOFOLLOW, 0, buffer) != 0)
        {
            return false;
        }

        var attributes = *(ulong*)(buffer + 8);
        var supported = *(ulong*)(buffer + 56);
        if ((supported & STATX_ATTR_MOUNT_ROOT) != 0)
        {
            return (attributes & STATX_ATTR_MOUNT_ROOT) != 0;
        }

        var full = Path.GetFullPath(path).TrimEnd('/');
        return MountPoints().Contains(full);
    }

    /// <summary>Mount points strictly below <paramref name="path"/>, deepest first.</summary>
    public static List<string> MountsBelow(string path)
    {
        var prefix = Path.GetFullPath(path).TrimEnd('/') + "/";
        return [.. MountPoints().Where(m => m.StartsWith(prefix, StringComparison.Ordinal)).Distinct().OrderByDescending(m => m.Length)];
    }

    private static IEnumerable<string> MountPoints()
        => File.ReadLines("/proc/self/mountinfo")
            .Select(line => line.Split(' '))
            .Where(fields => fields.Length > 4)
            .Select(fields => fields[4].Replace("\\040", " ", StringComparison.Ordinal));

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setns(SafeHandle fd, int nstype);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ioctl(SafeHandle fd, nuint request, nint argument);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int lchown(string path, int owner, int group);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fstat(int fd, out StatBuffer buf);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int lstat(string path, out StatBuffer buf);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int link(string oldPath, string newPath);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int chmod(string path, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mknod(string path, uint mode, ulong dev);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int lsetxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int utimensat(int dirfd, string path, Timespec* times, int flags);

    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    private const long SYS_openat2 = 437;
    private const ulong RESOLVE_NO_SYMLINKS = 0x04;
    private const ulong RESOLVE_BENEATH = 0x08;
    private const int O_DIRECTORY = 0x10000;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int fchownat(int dirfd, string path, int owner, int group, int flags);

    /// <summary>Opens <paramref name="path"/> (O_PATH) without following a symlink anywhere on the way.</summary>
    public static int OpenPathNoFollow(string path) => open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC | O_DIRECTORY, 0);

    /// <summary>Opens <paramref name="relative"/> below the directory <paramref name="rootFd"/> as an O_PATH
    /// descriptor, refusing any symlink on the way, the last component included, and any path out of the root.</summary>
    /// <returns>The descriptor, or -1 (errno ELOOP when a symlink was in the way).</returns>
    public static int OpenBeneath(int rootFd, string relative)
    {
        var how = new OpenHow { Flags = (ulong)(O_PATH | O_NOFOLLOW | O_CLOEXEC), Resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH };
        var p = Marshal.StringToCoTaskMemUTF8(relative);
        try
        {
            return (int)syscall(SYS_openat2, rootFd, p, (long)&how, sizeof(OpenHow), 0);
        }
        finally
        {
            Marshal.FreeCoTaskMem(p);
        }
    }

    /// <summary>Sets owner, then mode (chown clears setuid bits), then times of the inode behind an O_PATH descriptor:
    /// through its descriptor and /proc/self/fd, never through a path someone could have changed.</summary>
    public static void SetMetadata(int fd, int uid, int gid, uint mode, long seconds)
    {
        fchownat(fd, "", uid, gid, (int)AT_EMPTY_PATH);
        var self = $"/proc/self/fd/{fd}";
        chmod(self, mode);
        var times = stackalloc Timespec[2];
        times[0] = new Timespec { Seconds = seconds };
        times[1] = new Timespec { Seconds = seconds };
        utimensat(AT_FDCWD, self, times, 0);
    }

    /// <summary>Sets an extended attribute on <paramref name="path"/> itself (never a symlink's target).</summary>
    public static int SetXattr(string path, string name, ReadOnlySpan<byte> value)
    {
        fixed (byte* bytes = value)
        {
            return lsetxattr(path, name, bytes, (nuint)value.Length, 0);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>struct stat on x86_64 Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct StatBuffer
    {
        public ulong Dev;
        public ulong Ino;
        public ulong Nlink;
        public uint Mode;
        public uint Uid;
        public uint Gid;
        public int Pad0;
        public ulong Rdev;
        public long Size;
        public long Blksize;
        public long Blocks;
        public long AtimeSec;
        public long AtimeNsec;
        public long MtimeSec;
        public long MtimeNsec;
        public long CtimeSec;
        public long CtimeNsec;
        public long Reserved0;
        public long Reserved1;
        public long Reserved2;
    }

    public const uint S_IFMT = 0xF000;
    public const uint S_IFSOCK = 0xC000;
    public const uint S_IFCHR = 0x2000;

    public static int OpenTree(string path, uint flags)
    {
        var p = Marshal.StringToCoTaskMemUTF8(path);
        try
        {
            return (int)syscall(SYS_open_tree, AT_FDCWD, p, flags, 0, 0);
        }
        finally
        {
            Marshal.FreeCoTaskMem(p);
        }
    }

    public static int MountSetattr(int fd, uint flags, in MountAttr attr)
    {
        var empty = Marshal.StringToCoTaskMemUTF8("");
        try
        {
            fixed (MountAttr* a = &attr)
            {
                return (int)syscall(SYS_mount_setattr, fd, empty, flags, (long)a, sizeof(MountAttr));
            }
        }
        finally
        {
            Marshal.FreeCoTaskMem(empty);
        }
    }

    public static int MoveMount(int fromFd, string target)
    {
        var empty = Marshal.StringToCoTaskMemUTF8("");
        var t = Marshal.StringToCoTaskMemUTF8(target);
        try
        {
            return (int)syscall(SYS_move_mount, fromFd, empty, AT_FDCWD, t, MOVE_MOUNT_F_EMPTY_PATH);
        }
        finally
        {
            Marshal.FreeCoTaskMem(empty);
            Marshal.FreeCoTaskMem(t);
        }
    }

    [LibraryImport("libc")]
    private static partial int setpriority(int which, int who, int priority);

    [LibraryImport("libc")]
    private static partial int gettid();

    /// <summary>Gives the calling thread the lowest CPU priority (nice 19); other threads are unaffected.</summary>
    public static void LowerThreadPriority() => setpriority(0 /* PRIO_PROCESS, a thread id */, gettid(), 19);

    public static string LastError() => Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
}
