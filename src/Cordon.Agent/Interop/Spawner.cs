using System.Runtime.InteropServices;

namespace Cordon.Agent.Interop;

/// <summary>Starts a program with posix_spawn: its own session, default signal dispositions, an empty
/// signal mask, and the given descriptors as its standard streams.</summary>
/// <remarks>The .NET runtime ignores SIGPIPE and blocks some signals; both would be inherited across
/// exec without <c>POSIX_SPAWN_SETSIGDEF</c> and <c>POSIX_SPAWN_SETSIGMASK</c>.</remarks>
internal static unsafe class Spawner
{
    /// <summary>Spawns <paramref name="path"/>; returns its pid or throws with the errno text.</summary>
    /// <param name="stdinFd">Descriptor for fd 0, or -1 for /dev/null.</param>
    /// <param name="processLimit">RLIMIT_NPROC to give the child at once, before it can fork much.</param>
    /// <param name="channelFd">Descriptor to hand over as fd 3 (a code context's channel), or -1.</param>
    /// <param name="terminal">A pty's device to open as fds 0–2 instead: opened in the new session, it becomes the
    /// program's controlling terminal (the fd arguments are then ignored).</param>
    public static int Spawn(string path, IReadOnlyList<string> argv, IReadOnlyList<string> env, string? cwd, int stdinFd, int stdoutFd, int stderrFd, int? processLimit, int channelFd = -1, string? terminal = null)
    {
        if (terminal is not null)
        {
            stdinFd = stdoutFd = stderrFd = -2;
        }

        // dup2 onto fd 3 must not clobber a descriptor a later action still reads.
        if (channelFd is >= 0 and <= 3 || (channelFd >= 0 && terminal is null && Math.Min(stdoutFd, stderrFd) <= 3))
        {
            throw new SpawnException(Libc.EBADF);
        }

        var actions = NativeMemory.AllocZeroed(Libc.SpawnFileActionsSize);
        var attr = NativeMemory.AllocZeroed(Libc.SpawnAttrSize);
        var sigset = NativeMemory.AllocZeroed(Libc.SigsetSize);
        try
        {
            Check(Libc.posix_spawn_file_actions_init(actions));
            Check(Libc.posix_spawnattr_init(attr));
            try
            {
                if (terminal is not null)
                {
                    // glibc starts the new session before the file actions run, so this open acquires the terminal.
                    Check(Libc.posix_spawn_file_actions_addopen(actions, 0, terminal, Libc.O_RDWR, 0));
                    Check(Libc.posix_spawn_file_actions_adddup2(actions, 0, 1));
                    Check(Libc.posix_spawn_file_actions_adddup2(actions, 0, 2));
                }
                else
                {
                    if (stdinFd >= 0)
                    {
                        Check(Libc.posix_spawn_file_actions_adddup2(actions, stdinFd, 0));
                    }
                    else
                    {
                        Check(Libc.posix_spawn_file_actions_addopen(actions, 0, "/dev/null", Libc.O_RDONLY, 0));
                    }

                    Check(Libc.posix_spawn_file_actions_adddup2(actions, stdoutFd, 1));
                    Check(Libc.posix_spawn_file_actions_adddup2(actions, stderrFd, 2));
                }
                if (channelFd >= 0)
                {
                    Check(Libc.posix_spawn_file_actions_adddup2(actions, channelFd, 3));
                }
                if (cwd is not null)
                {
                    Check(Libc.posix_spawn_file_actions_addchdir_np(actions, cwd));
                }

                Check(Libc.posix_spawnattr_setflags(attr, Libc.POSIX_SPAWN_SETSID | Libc.POSIX_SPAWN_SETSIGMASK | Libc.POSIX_SPAWN_SETSIGDEF));
                Libc.sigemptyset(sigset);
                Check(Libc.posix_spawnattr_setsigmask(attr, sigset));
                Libc.sigfillset(sigset);
                Check(Libc.posix_spawnattr_setsigdefault(attr, sigset));

                using var argvArray = new Libc.StringArray(argv);
                using var envArray = new Libc.StringArray(env);
                var pathBytes = Marshal.StringToCoTaskMemUTF8(path);
                try
                {
                    // The command must start with its process limit: a fork bomb outruns anything done after the
                    // spawn on a busy machine. Children inherit rlimits, so the agent lowers its own soft limit
                    // for the instant of the spawn (spawns are serialised by the reaper), then restores it and
                    // clamps the child's hard limit too, so the command cannot raise it back.
                    var previous = processLimit is { } limit ? Libc.LowerOwnProcessLimit(limit) : default;
                    int rc, pid;
                    try
                    {
                        rc = Libc.posix_spawn(out pid, (byte*)pathBytes, actions, attr, argvArray.Pointer, envArray.Pointer);
                    }
                    finally
                    {
                        if (processLimit is not null)
                        {
                            Libc.RestoreOwnProcessLimit(previous);
                        }
                    }

                    if (rc != 0)
                    {
                        throw new SpawnException(rc);
                    }

                    if (processLimit is { } hard)
                    {
                        Libc.SetProcessLimit(pid, hard);
                    }

                    return pid;
                }
                finally
                {
                    Marshal.FreeCoTaskMem(pathBytes);
                }
            }
            finally
            {
                Libc.posix_spawn_file_actions_destroy(actions);
                Libc.posix_spawnattr_destroy(attr);
            }
        }
        finally
        {
            NativeMemory.Free(actions);
            NativeMemory.Free(attr);
            NativeMemory.Free(sigset);
        }
    }

    /// <summary>Creates a connected pair of unix stream sockets (close-on-exec).</summary>
    public static (int Ours, int Theirs) SocketPair()
    {
        var fds = stackalloc int[2];
        if (Libc.socketpair(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0, fds) != 0)
        {
            throw new SpawnException(Marshal.GetLastPInvokeError());
        }

        return (fds[0], fds[1]);
    }

    /// <summary>Replaces the current process (used by the <c>__exec</c> helper after changing identity).</summary>
    public static void Exec(string path, IReadOnlyList<string> argv, IReadOnlyList<string> env)
    {
        using var argvArray = new Libc.StringArray(argv);
        using var envArray = new Libc.StringArray(env);
        var pathBytes = Marshal.StringToCoTaskMemUTF8(path);
        Libc.execve((byte*)pathBytes, argvArray.Pointer, envArray.Pointer);
        throw new SpawnException(Marshal.GetLastPInvokeError());
    }

    private static void Check(int rc)
    {
        if (rc != 0)
        {
            throw new SpawnException(rc);
        }
    }
}
