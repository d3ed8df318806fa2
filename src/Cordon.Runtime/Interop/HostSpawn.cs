using System.Runtime.InteropServices;

namespace Cordon.Runtime.Interop;

/// <summary>Starts a host program with posix_spawn: standard streams on /dev/null, chosen descriptors placed
/// at chosen numbers (crun's <c>--preserve-fds</c> takes fds 3, 4 …), and an exit status read with waitpid.</summary>
/// <remarks>.NET's Process class cannot place a descriptor at a given number and costs a few ms more per
/// start (measured ~4 ms on crun); crun runs on every create and destroy. The runtime's SIGCHLD handling only
/// reaps children it started itself, so these are ours to wait for.</remarks>
internal static unsafe partial class HostSpawn
{
    private const int ECHILD = 10;
    private const int EINTR = 4;
    private const short POSIX_SPAWN_SETSIGDEF = 0x04;
    private const short POSIX_SPAWN_SETSIGMASK = 0x08;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newfd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int posix_spawn_file_actions_addopen(void* actions, int fd, string path, int oflag, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawnattr_init(void* attr);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawnattr_setsigmask(void* attr, void* sigmask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawnattr_setsigdefault(void* attr, void* sigdefault);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sigemptyset(void* set);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sigfillset(void* set);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawn(out int pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, out int status, int options);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int signal);

    /// <summary>Runs <paramref name="path"/> to its end and returns its exit status (128+n for signal n).</summary>
    /// <param name="descriptors">Descriptors to place in the child: (ours, number in the child).</param>
    /// <param name="argv0">The program's name for itself; by default the file name of <paramref name="path"/>.</param>
    /// <param name="output">A file (created 0600, appended to) for the program's stdout and stderr; by default /dev/null.</param>
    public static Task<int> RunAsync(string path, IReadOnlyList<string> argv, IReadOnlyList<(int Fd, int Target)>? descriptors = null, string? argv0 = null, string? output = null)
        => WaitAsync(Start(path, argv, descriptors, argv0, output));

    /// <summary>Starts <paramref name="path"/> from the calling thread (in its namespaces) and returns its pid, for
    /// <see cref="WaitAsync"/>.</summary>
    public static int Start(string path, IReadOnlyList<string> argv, IReadOnlyList<(int Fd, int Target)>? descriptors = null, string? argv0 = null, string? output = null)
        => Spawn(path, argv0 ?? Path.GetFileName(path), argv, descriptors ?? [], output);

    /// <summary>The exit status of a child from <see cref="Start"/> (128+n for signal n).</summary>
    public static Task<int> WaitAsync(int pid)
        // waitpid blocks a thread for the child's life (milliseconds for crun); not the request's thread.
        => Task.Factory.StartNew(() => Wait(pid), CancellationToken.None, TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);

    private const int O_WRONLY = 1;
    private const int O_CREAT = 0x40;
    private const int O_APPEND = 0x400;

    private static int Spawn(string path, string argv0, IReadOnlyList<string> argv, IReadOnlyList<(int Fd, int Target)> descriptors, string? output)
    {
        var actions = NativeMemory.AllocZeroed(128);
        var attr = NativeMemory.AllocZeroed(512);
        var sigset = NativeMemory.AllocZeroed(128);
        var args = new nint[argv.Count + 2];
        var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>().Select(e => $"{e.Key}={e.Value}").ToList();
        var envp = new nint[env.Count + 1];
        var pathBytes = Marshal.StringToCoTaskMemUTF8(path);
        try
        {
            posix_spawn_file_actions_init(actions);
            posix_spawnattr_init(attr);
            posix_spawn_file_actions_addopen(actions, 0, "/dev/null", 0, 0);
            if (output is null)
            {
                posix_spawn_file_actions_addopen(actions, 1, "/dev/null", O_WRONLY, 0);
                posix_spawn_file_actions_addopen(actions, 2, "/dev/null", O_WRONLY, 0);
            }
            else
            {
                posix_spawn_file_actions_addopen(actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0b110_000_000);
                posix_spawn_file_actions_adddup2(actions, 1, 2);
            }
            foreach (var (fd, target) in descriptors)
            {
                // dup2 onto the target clears close-on-exec there.
                posix_spawn_file_actions_adddup2(actions, fd, target);
            }

            posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
            sigemptyset(sigset);
            posix_spawnattr_setsigmask(attr, sigset);
            sigfillset(sigset);
            posix_spawnattr_setsigdefault(attr, sigset);

            args[0] = Marshal.StringToCoTaskMemUTF8(argv0);
            for (var i = 0; i < argv.Count; i++)
            {
                args[i + 1] = Marshal.StringToCoTaskMemUTF8(argv[i]);
            }

            for (var i = 0; i < env.Count; i++)
            {
                envp[i] = Marshal.StringToCoTaskMemUTF8(env[i]);
            }

            fixed (nint* a = args)
            fixed (nint* e = envp)
            {
                var rc = posix_spawn(out var pid, (byte*)pathBytes, actions, attr, (byte**)a, (byte**)e);
                if (rc != 0)
                {
                    throw new IOException($"posix_spawn {path}: {Marshal.GetPInvokeErrorMessage(rc)}");
                }

                return pid;
            }
        }
        finally
        {
            posix_spawn_file_actions_destroy(actions);
            posix_spawnattr_destroy(attr);
            NativeMemory.Free(actions);
            NativeMemory.Free(attr);
            NativeMemory.Free(sigset);
            Marshal.FreeCoTaskMem(pathBytes);
            foreach (var p in args.Concat(envp))
            {
                if (p != 0)
                {
                    Marshal.FreeCoTaskMem(p);
                }
            }
        }
    }

    private static int Wait(int pid)
    {
        while (true)
        {
            if (waitpid(pid, out var status, 0) == pid)
            {
                return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR)
            {
                throw new IOException($"waitpid {pid}: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
    }
}
