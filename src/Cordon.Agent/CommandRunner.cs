using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using Cordon.Agent.Interop;
using Cordon.Protocol;

namespace Cordon.Agent;

/// <summary>Runs one <see cref="ExecRequest"/>: spawns it in its own session, streams its output as frames,
/// feeds it standard input and signals, enforces its timeout and reports how it ended.</summary>
internal sealed class CommandRunner(ProcessReaper reaper, SandboxEnvironment environment)
{
    /// <summary>How long to wait for the output streams to close after the command exited; background
    /// children that keep them open do not hold the answer back longer than this.</summary>
    private static readonly TimeSpan DrainGrace = TimeSpan.FromMilliseconds(50);

    public async Task RunAsync(ExecRequest request, FrameStream frames, CancellationToken cancellationToken)
    {
        if (request.Argv.Count == 0 || string.IsNullOrEmpty(request.Argv[0]))
        {
            await AgentServer.SendErrorAsync(frames, AgentErrorCodes.InvalidArgument, "The command is empty: give a program and its arguments.", cancellationToken);
            return;
        }

        var user = request.User is null ? environment.DefaultUser : UserIdentity.Resolve(request.User);
        if (user is null)
        {
            await AgentServer.SendErrorAsync(frames, AgentErrorCodes.InvalidArgument,
                $"The user '{request.User}' does not exist in the sandbox's /etc/passwd: give an existing user name or a numeric uid.", cancellationToken);
            return;
        }

        var env = environment.BuildEnvironment(user, request.Env);
        var cwd = request.Cwd ?? environment.WorkingDir ?? (Directory.Exists(user.Home) ? user.Home : "/");
        if (SandboxPaths.Validate(cwd) is { } cwdProblem)
        {
            await AgentServer.SendErrorAsync(frames, AgentErrorCodes.InvalidArgument, "Working directory: " + cwdProblem, cancellationToken);
            return;
        }

        if (!Directory.Exists(cwd))
        {
            await AgentServer.SendErrorAsync(frames, AgentErrorCodes.NotFound,
                $"The working directory '{cwd}' does not exist in the sandbox: create it first or choose another.", cancellationToken);
            return;
        }

        var stopwatch = Stopwatch.StartNew();
        var program = ResolveProgram(request.Argv[0], env);
        if (program is null)
        {
            // As a shell would: exit status 127 and a line on stderr, so callers treat it like any failed command.
            await frames.WriteJsonAsync(FrameKind.Started, new StartedMessage(0), AgentJsonContext.Default.StartedMessage, cancellationToken);
            await frames.WriteAsync(FrameKind.Stderr, System.Text.Encoding.UTF8.GetBytes($"{request.Argv[0]}: command not found\n"), cancellationToken);
            await frames.WriteJsonAsync(FrameKind.Exit, new ExitMessage { ExitCode = 127, DurationMs = stopwatch.ElapsedMilliseconds }, AgentJsonContext.Default.ExitMessage, cancellationToken);
            return;
        }

        if (request.Pty is { } size)
        {
            await Terminal.RunAsync(this, user, program, request, env, cwd, size, frames, cancellationToken);
            return;
        }

        var (stdoutOurs, stdoutTheirs) = Spawner.SocketPair();
        var (stderrOurs, stderrTheirs) = Spawner.SocketPair();
        var (stdinOurs, stdinTheirs) = request.Stdin ? Spawner.SocketPair() : (-1, -1);
        using var stdout = new Socket(new SafeSocketHandle(stdoutOurs, ownsHandle: true));
        using var stderr = new Socket(new SafeSocketHandle(stderrOurs, ownsHandle: true));
        using var stdin = stdinOurs >= 0 ? new Socket(new SafeSocketHandle(stdinOurs, ownsHandle: true)) : null;

        int pid;
        Task<int> exit;
        try
        {
            (pid, exit) = Launch(user, program, request.Argv, env, cwd, stdinTheirs, stdoutTheirs, stderrTheirs);
        }
        catch (SpawnException ex)
        {
            await AgentServer.SendErrorAsync(frames, AgentErrorCodes.InvalidArgument, $"The command could not be started: {ex.Message}.", cancellationToken);
            return;
        }
        finally
        {
            Libc.close(stdoutTheirs);
            Libc.close(stderrTheirs);
            if (stdinTheirs >= 0)
            {
                Libc.close(stdinTheirs);
            }
        }

        await frames.WriteJsonAsync(FrameKind.Started, new StartedMessage(pid), AgentJsonContext.Default.StartedMessage, cancellationToken);

        using var pumpStop = new CancellationTokenSource();
        var stdoutPump = PumpAsync(stdout, FrameKind.Stdout, frames, pumpStop.Token);
        var stderrPump = PumpAsync(stderr, FrameKind.Stderr, frames, pumpStop.Token);

        using var timeout = new CommandTimeout(pid, request.TimeoutMs);

        using var inputStop = new CancellationTokenSource();
        var input = ReadClientAsync(frames, pid, stdin is null ? null : new SocketInput(stdin), inputStop.Token);

        var status = await exit;

        // Whatever the command wrote before it exited is already buffered: give the streams a moment to
        // reach end-of-file, then take what is left without waiting on background children.
        await Task.WhenAny(Task.WhenAll(stdoutPump, stderrPump), Task.Delay(DrainGrace, CancellationToken.None));
        await pumpStop.CancelAsync();
        await Task.WhenAll(stdoutPump, stderrPump);
        await DrainAsync(stdout, FrameKind.Stdout, frames, cancellationToken);
        await DrainAsync(stderr, FrameKind.Stderr, frames, cancellationToken);

        await inputStop.CancelAsync();
        await input;

        await frames.WriteJsonAsync(FrameKind.Exit, Ended(status, timeout.Expired, stopwatch), AgentJsonContext.Default.ExitMessage, cancellationToken);
    }

    /// <summary>How a command ended, from its wait status.</summary>
    internal static ExitMessage Ended(int status, bool timedOut, Stopwatch stopwatch) => Libc.WIFEXITED(status)
        ? new ExitMessage { ExitCode = Libc.WEXITSTATUS(status), TimedOut = timedOut, DurationMs = stopwatch.ElapsedMilliseconds }
        : new ExitMessage { ExitCode = 128 + Libc.WTERMSIG(status), Signal = Libc.WTERMSIG(status), TimedOut = timedOut, DurationMs = stopwatch.ElapsedMilliseconds };

    /// <summary>Starts <paramref name="program"/> as <paramref name="user"/> in its own session, under the
    /// sandbox's process limit, as the preferred victim of the out-of-memory killer.</summary>
    /// <param name="channelFd">Handed to the program as fd 3 (code contexts), or -1.</param>
    /// <exception cref="SpawnException">The program could not be started.</exception>
    /// <param name="terminal">A pty device to give the program as its controlling terminal and fds 0–2.</param>
    public (int Pid, Task<int> Exit) Launch(UserIdentity user, string program, IReadOnlyList<string> argv, List<string> env, string cwd, int stdinFd, int stdoutFd, int stderrFd, int channelFd = -1, string? terminal = null)
    {
        var started = reaper.Start(() => user.IsRoot
            ? Spawner.Spawn(program, argv, env, cwd, stdinFd, stdoutFd, stderrFd, environment.MaxProcesses, channelFd, terminal)
            : Spawner.Spawn(Environment.ProcessPath ?? "/proc/self/exe", ExecHelper.BuildArguments(user, program, argv), env, cwd, stdinFd, stdoutFd, stderrFd, environment.MaxProcesses, channelFd, terminal));
        MakePreferredOomVictim(started.Pid);
        return started;
    }

    /// <summary>When the sandbox runs out of memory the kernel kills the process with the highest score: make
    /// that a command (and its children, who inherit the score), never the agent, which must survive to
    /// report what happened.</summary>
    private static void MakePreferredOomVictim(int pid)
    {
        try
        {
            File.WriteAllText($"/proc/{pid}/oom_score_adj", "800");
        }
        catch (IOException)
        {
            // The command already ended.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    internal static async Task PumpAsync(Socket source, FrameKind kind, FrameStream frames, CancellationToken stop)
    {
        // Pooled: a fresh 64 KiB array per stream per command was zeroed and faulted in every time.
        var buffer = ArrayPool<byte>.Shared.Rent(FrameStream.ChunkSize);
        try
        {
            while (true)
            {
                var n = await source.ReceiveAsync(buffer, SocketFlags.None, stop);
                if (n == 0)
                {
                    return;
                }

                await frames.WriteAsync(kind, buffer.AsMemory(0, n), CancellationToken.None);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
        catch (IOException)
        {
            // The client went away; the reader notices and kills the command.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task DrainAsync(Socket source, FrameKind kind, FrameStream frames, CancellationToken cancellationToken)
    {
        byte[]? buffer = null; // usually never needed: the pumps took everything
        try
        {
            while (source.Available > 0)
            {
                buffer ??= ArrayPool<byte>.Shared.Rent(FrameStream.ChunkSize);
                var n = source.Receive(buffer, SocketFlags.None);
                if (n <= 0)
                {
                    return;
                }

                await frames.WriteAsync(kind, buffer.AsMemory(0, n), cancellationToken);
            }
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>Reads stdin, stdin-close, resize and signal frames until the command ends, handing input to
    /// <paramref name="input"/>. A client that goes away takes its command with it: nobody would read the result.</summary>
    internal static async Task ReadClientAsync(FrameStream frames, int pid, ICommandInput? input, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                var frame = await frames.ReadAsync(stop);
                if (frame is null)
                {
                    Libc.kill(-pid, Libc.SIGKILL);
                    return;
                }

                switch (frame.Value.Kind)
                {
                    case FrameKind.Stdin when input is not null:
                        await input.WriteAsync(frame.Value.Payload, stop);
                        break;
                    case FrameKind.StdinClose when input is not null:
                        input.Close();
                        break;
                    case FrameKind.Resize when input is not null:
                        input.Resize(FrameStream.ParseJson(frame.Value, AgentJsonContext.Default.TerminalSize));
                        break;
                    case FrameKind.Signal:
                        var signal = FrameStream.ParseJson(frame.Value, AgentJsonContext.Default.SignalMessage);
                        if (signal.Signal is > 0 and < 65)
                        {
                            Libc.kill(-pid, signal.Signal);
                        }

                        break;
                    default:
                        break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is IOException or SocketException or InvalidDataException or ObjectDisposedException)
        {
            Libc.kill(-pid, Libc.SIGKILL);
        }
    }

    /// <summary>A command's standard input as a socket (a pipe of sorts; it cannot be resized).</summary>
    private sealed class SocketInput(Socket socket) : ICommandInput
    {
        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
            => await socket.SendAsync(data, SocketFlags.None, cancellationToken);

        public void Close() => socket.Shutdown(SocketShutdown.Send);

        public void Resize(TerminalSize size)
        {
        }
    }

    /// <summary>The program's path: as given when it has a slash, else the first executable match in PATH.</summary>
    public static string? ResolveProgram(string name, IReadOnlyList<string> env)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return name;
        }

        var path = env.FirstOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..] ?? SandboxEnvironment.DefaultPath;
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate) && (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
            {
                return candidate;
            }
        }

        return null;
    }
}
