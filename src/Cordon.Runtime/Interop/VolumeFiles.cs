using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Cordon.Runtime.Interop;

/// <summary>One entry of a volume, as its file API shows it.</summary>
public sealed record VolumeEntry(string Name, string Path, string Type, long Size, uint Mode, uint Uid, uint Gid,
    DateTimeOffset AccessedAt, DateTimeOffset ModifiedAt, DateTimeOffset ChangedAt, string? Target);

/// <summary>Files of a volume, read and written by the server without a sandbox. A volume's contents are written by
/// sandboxes, so every path is resolved by the kernel inside the volume (openat2 with RESOLVE_IN_ROOT, no magic links,
/// no other mount): a symlink a sandbox planted resolves within the volume, never to the host's files.</summary>
/// <remarks>Owners are the ids as sandboxes see them (0 is a sandbox's root): a volume stores its files with the ids
/// of no sandbox's range, and each sandbox sees them through its own mapping.</remarks>
public sealed partial class VolumeFiles(string root)
{
    /// <summary>Deepest directory tree <see cref="Remove"/> descends.</summary>
    public const int MaxDepth = 256;

    private const int O_RDONLY = 0;
    private const int O_WRONLY = 1;
    private const int O_CREAT = 0x40;
    private const int O_EXCL = 0x80;
    private const int O_DIRECTORY = 0x10000;
    private const int AT_REMOVEDIR = 0x200;
    private const ulong RESOLVE_NO_XDEV = 0x01;
    private const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    private const ulong RESOLVE_IN_ROOT = 0x10;
    private const long SYS_openat2 = 437;
    private const int EEXIST = 17;
    private const int EISDIR = 21;
    private const int ENOTDIR = 20;

    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long a1, long a2, long a3, long a4, long a5);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int openat(int dirfd, string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkdirat(int dirfd, string path, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unlinkat(int dirfd, string path, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int renameat(int olddirfd, string oldpath, int newdirfd, string newpath);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int fstatat(int dirfd, string path, out Syscalls.StatBuffer buf, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int fchownat(int dirfd, string path, int owner, int group, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fchmod(int fd, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint readlinkat(int dirfd, string path, byte* buf, nuint size);

    /// <summary>The entry at <paramref name="path"/> itself (a symlink is shown, not followed).</summary>
    /// <exception cref="FileNotFoundException">Nothing is there.</exception>
    public VolumeEntry Stat(string path)
    {
        var relative = Relative(path);
        using var fd = Open(relative, Syscalls.O_PATH | Syscalls.O_NOFOLLOW, path);
        return Describe(fd.Fd, "", Display(relative));
    }

    /// <summary>The entries of a directory, <paramref name="depth"/> levels deep (symlinked directories not entered).</summary>
    public List<VolumeEntry> List(string path, int depth, int maxEntries)
    {
        var entries = new List<VolumeEntry>();
        ListInto(Relative(path), Math.Clamp(depth, 1, 16), entries, maxEntries, path);
        return entries;
    }

    private void ListInto(string relative, int depth, List<VolumeEntry> entries, int maxEntries, string asked)
    {
        using var dir = Open(relative, O_RDONLY | O_DIRECTORY, asked);
        foreach (var name in Directory.EnumerateFileSystemEntries($"/proc/self/fd/{dir.Fd}").Select(System.IO.Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal))
        {
            if (entries.Count >= maxEntries)
            {
                throw new IOException($"The listing has more than {maxEntries} entries: list a smaller directory or less deep.", 27 /* EFBIG */);
            }

            var child = relative.Length == 0 ? name : relative + "/" + name;
            var entry = Describe(dir.Fd, name, Display(child));
            entries.Add(entry);
            if (depth > 1 && entry.Type == "directory")
            {
                ListInto(child, depth - 1, entries, maxEntries, asked);
            }
        }
    }

    /// <summary>Opens a regular file for reading (a symlink on the way resolves inside the volume).</summary>
    public Stream OpenRead(string path)
    {
        var relative = Relative(path);
        var fd = Open(relative, O_RDONLY, path);
        if (Syscalls.fstat(fd.Fd, out var stat) != 0 || (stat.Mode & Syscalls.S_IFMT) != 0x8000)
        {
            fd.Dispose();
            throw new IOException($"'{path}' is not a regular file.", EISDIR);
        }

        return new FileStream(new SafeFileHandle(fd.Take(), ownsHandle: true), FileAccess.Read, bufferSize: 0);
    }

    /// <summary>Writes a file from <paramref name="content"/>, creating missing parent directories; it replaces the
    /// old file only once complete.</summary>
    public async Task<VolumeEntry> WriteAsync(string path, Stream content, uint? mode, int? uid, int? gid, CancellationToken cancellationToken)
    {
        var relative = Relative(path);
        var (parent, name) = Split(relative, path);
        using var dir = MakeDirectories(parent, 0b111_101_101, uid, gid);
        var temporary = $".cordon-write-{Guid.NewGuid():N}";
        var fd = openat(dir.Fd, temporary, O_WRONLY | O_CREAT | O_EXCL | Syscalls.O_NOFOLLOW | Syscalls.O_CLOEXEC, (int)(mode ?? 0b110_100_100));
        if (fd < 0)
        {
            throw Error(path);
        }

        try
        {
            using (var file = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, bufferSize: 0))
            {
                await content.CopyToAsync(file, 1 << 16, cancellationToken);
                if ((uid ?? 0) != 0 || (gid ?? 0) != 0)
                {
                    fchownat(fd, "", uid ?? 0, gid ?? 0, (int)Syscalls.AT_EMPTY_PATH);
                }

                if (mode is { } wanted)
                {
                    fchmod(fd, wanted & 0xFFF);
                }
            }

            if (renameat(dir.Fd, temporary, dir.Fd, name) != 0)
            {
                throw Error(path);
            }
        }
        catch
        {
            unlinkat(dir.Fd, temporary, 0);
            throw;
        }

        return Describe(dir.Fd, name, Display(relative));
    }

    /// <summary>Makes a directory and any missing parents; one that exists is fine.</summary>
    public VolumeEntry MakeDirectory(string path, uint? mode, int? uid, int? gid)
    {
        var relative = Relative(path);
        using var dir = MakeDirectories(relative, mode ?? 0b111_101_101, uid, gid);
        return Describe(dir.Fd, "", Display(relative));
    }

    /// <summary>Removes a file, a symlink or a directory with everything in it (symlinks are removed, never followed).</summary>
    public void Remove(string path)
    {
        var relative = Relative(path);
        var (parent, name) = Split(relative, path);
        using var dir = Open(parent, Syscalls.O_PATH | O_DIRECTORY, path);
        RemoveAt(dir.Fd, name, 0, path);
    }

    /// <summary>Changes the owner and mode of an entry (a symlink's own owner; its mode cannot change).</summary>
    public VolumeEntry SetMetadata(string path, uint? mode, int? uid, int? gid)
    {
        var relative = Relative(path);
        using var fd = Open(relative, Syscalls.O_PATH | Syscalls.O_NOFOLLOW, path);
        if (uid is not null || gid is not null)
        {
            Syscalls.fstat(fd.Fd, out var stat);
            if (fchownat(fd.Fd, "", uid ?? (int)stat.Uid, gid ?? (int)stat.Gid, (int)Syscalls.AT_EMPTY_PATH) != 0)
            {
                throw Error(path);
            }
        }

        if (mode is { } wanted)
        {
            using var real = Open(relative, O_RDONLY | Syscalls.O_NOFOLLOW, path);
            if (fchmod(real.Fd, wanted & 0xFFF) != 0)
            {
                throw Error(path);
            }
        }

        return Describe(fd.Fd, "", Display(relative));
    }

    private void RemoveAt(int dirFd, string name, int depth, string asked)
    {
        if (unlinkat(dirFd, name, 0) == 0)
        {
            return;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno != EISDIR && errno != 1 /* EPERM, what unlink of a directory gives on some file systems */)
        {
            throw Error(asked, errno);
        }

        if (depth >= MaxDepth)
        {
            throw new IOException($"'{asked}' is deeper than {MaxDepth} levels; remove its inner directories first.", 40 /* ELOOP */);
        }

        var child = openat(dirFd, name, O_RDONLY | O_DIRECTORY | Syscalls.O_NOFOLLOW | Syscalls.O_CLOEXEC, 0);
        if (child < 0)
        {
            throw Error(asked);
        }

        try
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries($"/proc/self/fd/{child}").Select(System.IO.Path.GetFileName).OfType<string>().ToList())
            {
                RemoveAt(child, entry, depth + 1, asked);
            }
        }
        finally
        {
            Syscalls.close(child);
        }

        if (unlinkat(dirFd, name, AT_REMOVEDIR) != 0)
        {
            throw Error(asked);
        }
    }

    private Descriptor MakeDirectories(string relative, uint mode, int? uid, int? gid)
    {
        var current = Open("", Syscalls.O_PATH | O_DIRECTORY, "/");
        var prefix = "";
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            prefix = prefix.Length == 0 ? part : prefix + "/" + part;
            if (mkdirat(current.Fd, part, (int)(mode & 0xFFF)) == 0 && ((uid ?? 0) != 0 || (gid ?? 0) != 0))
            {
                fchownat(current.Fd, part, uid ?? 0, gid ?? 0, (int)Syscalls.AT_SYMLINK_NOFOLLOW);
            }
            else if (Marshal.GetLastPInvokeError() is var errno && errno != 0 && errno != EEXIST)
            {
                current.Dispose();
                throw Error("/" + relative, errno);
            }

            // The path so far resolves from the volume's root, as a sandbox sees it, even through a symlink a sandbox
            // made (an absolute one points at the volume's root, never the host's).
            current.Dispose();
            current = Open(prefix, Syscalls.O_PATH | O_DIRECTORY, "/" + relative);
        }

        return current;
    }

    private Descriptor Open(string relative, int flags, string asked)
    {
        using var rootFd = new Descriptor(Syscalls.open(root, Syscalls.O_PATH | O_DIRECTORY | Syscalls.O_CLOEXEC, 0));
        if (rootFd.Fd < 0)
        {
            throw new IOException("The volume is not mounted.", 2);
        }

        var fd = Open2(rootFd.Fd, relative.Length == 0 ? "." : relative, flags);
        return fd < 0 ? throw Error(asked) : new Descriptor(fd);
    }

    /// <summary>openat2 below <paramref name="dirFd"/> as if it were the root: ".." and absolute symlinks stop there.</summary>
    private static unsafe int Open2(int dirFd, string relative, int flags)
    {
        var how = new OpenHow { Flags = (ulong)(flags | Syscalls.O_CLOEXEC), Resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
        var p = Marshal.StringToCoTaskMemUTF8(relative);
        try
        {
            return (int)syscall(SYS_openat2, dirFd, p, (long)&how, sizeof(OpenHow), 0);
        }
        finally
        {
            Marshal.FreeCoTaskMem(p);
        }
    }

    private static unsafe VolumeEntry Describe(int dirFd, string name, string path)
    {
        if (fstatat(dirFd, name, out var stat, (int)(Syscalls.AT_SYMLINK_NOFOLLOW | (name.Length == 0 ? Syscalls.AT_EMPTY_PATH : 0))) != 0)
        {
            throw Error(path);
        }

        var type = (stat.Mode & Syscalls.S_IFMT) switch
        {
            0x8000 => "file",
            0x4000 => "directory",
            0xA000 => "symlink",
            _ => "unknown",
        };
        string? target = null;
        if (type == "symlink")
        {
            var buffer = stackalloc byte[4096];
            var n = readlinkat(dirFd, name, buffer, 4096);
            target = n > 0 ? System.Text.Encoding.UTF8.GetString(buffer, (int)n) : null;
        }

        return new VolumeEntry(System.IO.Path.GetFileName(path.TrimEnd('/')) is { Length: > 0 } leaf ? leaf : "/", path, type, stat.Size, stat.Mode & 0xFFF, stat.Uid, stat.Gid,
            Time(stat.AtimeSec, stat.AtimeNsec), Time(stat.MtimeSec, stat.MtimeNsec), Time(stat.CtimeSec, stat.CtimeNsec), target);
    }

    private static DateTimeOffset Time(long seconds, long nanoseconds) => DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanoseconds / 100);

    /// <summary>A path as the API takes it (absolute or not, "/" the volume's root) made relative, without empty or "." parts.</summary>
    private static string Relative(string path)
    {
        if (path.Contains('\0', StringComparison.Ordinal) || path.Length > 4096)
        {
            throw new ArgumentException("The path is longer than 4096 characters or holds a NUL character.");
        }

        return string.Join('/', path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != "."));
    }

    private static string Display(string relative) => "/" + relative;

    private static (string Parent, string Name) Split(string relative, string asked)
    {
        if (relative.Length == 0 || relative.Split('/')[^1] == "..")
        {
            throw new ArgumentException($"'{asked}' names the volume's root or a parent, not a file in it.");
        }

        var slash = relative.LastIndexOf('/');
        return slash < 0 ? ("", relative) : (relative[..slash], relative[(slash + 1)..]);
    }

    private static IOException Error(string path) => Error(path, Marshal.GetLastPInvokeError());

    private static IOException Error(string path, int errno) => errno switch
    {
        2 => new FileNotFoundException($"'{path}' does not exist in the volume."),
        ENOTDIR => new IOException($"A part of '{path}' is not a directory.", errno),
        EISDIR => new IOException($"'{path}' is a directory.", errno),
        EEXIST => new IOException($"'{path}' exists already.", errno),
        28 => new IOException("The volume is full: remove files or create a larger volume.", errno),
        _ => new IOException($"'{path}': {Marshal.GetPInvokeErrorMessage(errno)}.", errno),
    };

    /// <summary>A descriptor closed on dispose unless taken.</summary>
    private sealed class Descriptor(int fd) : IDisposable
    {
        public int Fd { get; private set; } = fd;

        public int Take()
        {
            var fd = Fd;
            Fd = -1;
            return fd;
        }

        public void Dispose()
        {
            if (Fd >= 0)
            {
                Syscalls.close(Fd);
                Fd = -1;
            }
        }
    }
}
