using System.Runtime.InteropServices;

namespace Cordon.Agent.Interop;

/// <summary>The libc calls the agent needs that .NET does not expose: process spawning without the
/// runtime's Process class (PID 1 reaps every child itself), identity changes and raw file metadata.</summary>
/// <remarks>All unsafe code of the agent lives in this folder.</remarks>
internal static unsafe partial class Libc
{
    public const int EINTR = 4;
    public const int ECHILD = 10;
    public const int EBADF = 9;
    public const int ESRCH = 3;

    public const int SIGHUP = 1;
    public const int SIGINT = 2;
    public const int SIGQUIT = 3;
    public const int SIGKILL = 9;
    public const int SIGPIPE = 13;
    public const int SIGTERM = 15;

    public const int O_RDONLY = 0;
    public const int O_RDWR = 2;

    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;
    public const short POSIX_SPAWN_SETSID = 0x80;

    public const int AF_UNIX = 1;
    public const int SOCK_STREAM = 1;
    public const int SOCK_CLOEXEC = 0x80000;

    /// <summary>glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336 on x86_64; these leave room.</summary>
    public const int SpawnFileActionsSize = 128;
    public const int SpawnAttrSize = 512;
    public const int SigsetSize = 128;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newfd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int posix_spawn_file_actions_addopen(void* actions, int fd, string path, int oflag, int mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int posix_spawn_file_actions_addchdir_np(void* actions, string path);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnattr_init(void* attr);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnattr_setsigmask(void* attr, void* sigmask);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawnattr_setsigdefault(void* attr, void* sigdefault);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int sigemptyset(void* set);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int sigfillset(void* set);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_spawn(out int pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int waitpid(int pid, out int status, int options);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int sig);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint signal(int signum, nint handler);

    [LibraryImport("libc")]
    private static partial int mallopt(int param, int value);

    /// <summary>Returns the free memory at the top and in the middle of glibc's heap to the kernel.</summary>
    [LibraryImport("libc")]
    public static partial int malloc_trim(nuint pad);

    /// <summary>Sets each of <paramref name="signals"/> to be ignored. Commands start with every signal at its
    /// default (the spawner's <c>POSIX_SPAWN_SETSIGDEF</c>), so this stays the agent's own.</summary>
    public static void IgnoreSignals(params ReadOnlySpan<int> signals)
    {
        foreach (var signum in signals)
        {
            if (signal(signum, 1 /* SIG_IGN */) == -1 /* SIG_ERR */)
            {
                throw new InvalidOperationException($"signal({signum}, SIG_IGN) failed: " + System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(System.Runtime.InteropServices.Marshal.GetLastPInvokeError()));
            }
        }
    }

    /// <summary>One malloc arena for all threads: glibc otherwise gives each thread that allocates its own (a
    /// mapping and its touched pages per thread, in every sandbox), and the agent's native allocations are few.</summary>
    public static void UseOneMallocArena() => mallopt(-8 /* M_ARENA_MAX */, 1);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int socketpair(int domain, int type, int protocol, int* sv);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setgroups(nint size, uint* list);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setfsuid(uint fsuid);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setfsgid(uint fsgid);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long a1, long a2);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fstat(int fd, out Stat buf);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    /// <summary>PR_SET_DUMPABLE 0: other processes of the same uid may not ptrace this one, read its memory or
    /// take its descriptors, and its /proc files are root's.</summary>
    public static void MakeNotDumpable()
    {
        if (prctl(4 /* PR_SET_DUMPABLE */, 0, 0, 0, 0) != 0)
        {
            throw new InvalidOperationException("prctl(PR_SET_DUMPABLE, 0) failed: " + System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(System.Runtime.InteropServices.Marshal.GetLastPInvokeError()));
        }
    }

    /// <summary>Gives the calling thread, and only it, a user's file-system identity: its fsuid, fsgid and groups.
    /// The kernel then checks every path this thread resolves and every file it opens or creates against that
    /// user, and drops the thread's file capabilities (CAP_DAC_OVERRIDE …) while the fsuid is not 0.</summary>
    /// <remarks>glibc's setgroups changes every thread of the process, so the system call is made directly;
    /// setfsuid and setfsgid are per thread already. The caller's thread must end afterwards (see UserThread).</remarks>
    /// <returns>False when the kernel refused.</returns>
    public static bool BecomeFileUser(uint uid, uint gid, uint[] groups)
    {
        var setgroupsCall = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? 159 : 116;
        fixed (uint* list = groups)
        {
            if (syscall(setgroupsCall, groups.Length, (long)list) != 0)
            {
                return false;
            }
        }

        setfsgid(gid);
        setfsuid(uid);

        // Each returns the id in effect; -1 changes nothing.
        return (uint)setfsuid(uint.MaxValue) == uid && (uint)setfsgid(uint.MaxValue) == gid;
    }

    /// <summary>Becomes <paramref name="uid"/>:<paramref name="gid"/> with exactly these supplementary groups.</summary>
    /// <returns>False (errno set) when the kernel refused any step.</returns>
    public static bool SwitchUser(uint uid, uint gid, uint[] groups)
    {
        fixed (uint* list = groups)
        {
            return setgroups(groups.Length, list) == 0 && setresgid(gid, gid, gid) == 0 && setresuid(uid, uid, uid) == 0;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setresgid(uint rgid, uint egid, uint sgid);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setresuid(uint ruid, uint euid, uint suid);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int execve(byte* path, byte** argv, byte** envp);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int lchown(string path, int owner, int group);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int lstat(string path, out Stat buf);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int umask(int mask);

    private const int RLIMIT_NPROC = 6;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int prlimit(int pid, int resource, RLimit* newLimit, RLimit* oldLimit);

    /// <summary>Sets RLIMIT_NPROC of another process (soft and hard).</summary>
    public static void SetProcessLimit(int pid, int limit)
    {
        var value = new RLimit { Current = (ulong)limit, Maximum = (ulong)limit };
        prlimit(pid, RLIMIT_NPROC, &value, null);
    }

    /// <summary>Lowers this process's soft RLIMIT_NPROC (the hard limit stays) and returns the previous value;
    /// a spawned child inherits it from the first instruction on.</summary>
    public static (ulong Soft, ulong Hard) LowerOwnProcessLimit(int limit)
    {
        RLimit old;
        prlimit(0, RLIMIT_NPROC, null, &old);
        var lowered = new RLimit { Current = (ulong)limit, Maximum = old.Maximum };
        prlimit(0, RLIMIT_NPROC, &lowered, null);
        return (old.Current, old.Maximum);
    }

    public static void RestoreOwnProcessLimit((ulong Soft, ulong Hard) previous)
    {
        var value = new RLimit { Current = previous.Soft, Maximum = previous.Hard };
        prlimit(0, RLIMIT_NPROC, &value, null);
    }

    public const int O_NOCTTY = 0x100;
    public const int O_CLOEXEC = 0x80000;
    public const int EIO = 5;
    public const uint TIOCSWINSZ = 0x5414;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int posix_openpt(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int grantpt(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int unlockpt(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ptsname_r(int fd, byte* buffer, nint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ioctl(int fd, uint request, void* argument);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, byte* buffer, nint count);

    /// <summary>struct winsize.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct WindowSize
    {
        public ushort Rows;
        public ushort Cols;
        public ushort XPixels;
        public ushort YPixels;
    }

    public const int F_SETFD = 2;
    public const int FD_CLOEXEC = 1;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fcntl(int fd, int command, int argument);

    /// <summary>struct stat on x86_64 Linux (glibc and the kernel agree on this layout).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Stat
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

    /// <summary>A NUL-terminated array of NUL-terminated UTF-8 strings in unmanaged memory, as argv and envp want.</summary>
    public sealed class StringArray : IDisposable
    {
        private readonly nint[] _strings;

        public StringArray(IReadOnlyList<string> values)
        {
            _strings = new nint[values.Count];
            Pointer = (byte**)NativeMemory.Alloc((nuint)(values.Count + 1), (nuint)sizeof(nint));
            for (var i = 0; i < values.Count; i++)
            {
                _strings[i] = Marshal.StringToCoTaskMemUTF8(values[i]);
                Pointer[i] = (byte*)_strings[i];
            }

            Pointer[values.Count] = null;
        }

        public byte** Pointer { get; }

        public void Dispose()
        {
            foreach (var s in _strings)
            {
                Marshal.FreeCoTaskMem(s);
            }

            NativeMemory.Free(Pointer);
        }
    }

    public static bool WIFEXITED(int status) => (status & 0x7f) == 0;

    public static int WEXITSTATUS(int status) => (status >> 8) & 0xff;

    public static bool WIFSIGNALED(int status) => ((status & 0x7f) + 1) >> 1 > 0 && (status & 0x7f) != 0x7f;

    public static int WTERMSIG(int status) => status & 0x7f;
}
