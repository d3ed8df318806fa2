using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Cordon.Agent.Interop;
using Cordon.Protocol;

namespace Cordon.Agent.Code;

/// <summary>One code context: a live interpreter (a Jupyter kernel behind the Python driver, or Cordon's own
/// Node.js or Bash driver) that keeps its state between runs. Runs take turns; each streams its events.</summary>
/// <remarks>
/// The driver gets the context's channel as fd 3 (newline-delimited JSON, see Drivers/) and its stdout and
/// stderr as sockets. For Jupyter those two carry only the kernel's logs (kept for diagnostics); for the
/// other drivers they carry what child processes print, and for Bash everything the code prints, followed
/// by a marker after each run so that no output of a run arrives after its end.
/// </remarks>
internal sealed class CodeContext
{
    /// <summary>How long a run may ignore an interrupt before the interpreter is killed.</summary>
    private static readonly TimeSpan InterruptGrace = TimeSpan.FromSeconds(3);

    /// <summary>A Jupyter kernel imports a lot before it is ready; a cold machine needs more than a few seconds.</summary>
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);

    /// <summary>The longest event the driver may send (a large figure is a few MiB of base64).</summary>
    private const int MaxEventBytes = 64 << 20;

    /// <summary>The Python driver's exit status when its kernel died (see python_driver.py).</summary>
    private const int KernelDiedStatus = 3;

    private readonly CodeLanguage _language;
    private readonly UserIdentity _user;
    private readonly IReadOnlyDictionary<string, string>? _env;
    private readonly CommandRunner _launcher;
    private readonly SandboxEnvironment _environment;
    private readonly SemaphoreSlim _turn = new(1, 1);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Lock _lock = new();
    private readonly byte[] _marker = Encoding.ASCII.GetBytes($"\u001e\u001fcordon-{Guid.NewGuid():N}\u001e");

    private Instance? _instance;
    private RunState? _run;
    private int _executionCount;
    private string? _exitReason;

    private CodeContext(string id, CodeLanguage language, string cwd, UserIdentity user, IReadOnlyDictionary<string, string>? env, CommandRunner launcher, SandboxEnvironment environment)
    {
        Id = id;
        _language = language;
        Cwd = cwd;
        _user = user;
        _env = env;
        _launcher = launcher;
        _environment = environment;
    }

    public string Id { get; }

    public string Cwd { get; }

    public long CreatedAt { get; } = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public bool IsDead => _instance is null || _instance.Exit.IsCompleted;

    public static async Task<CodeContext> StartAsync(string id, CodeLanguage language, string cwd, UserIdentity user, IReadOnlyDictionary<string, string>? env,
        CommandRunner launcher, SandboxEnvironment environment, CancellationToken cancellationToken)
    {
        var context = new CodeContext(id, language, cwd, user, env, launcher, environment);
        await context.LaunchAsync(cancellationToken);
        return context;
    }

    public ContextInfo Info()
    {
        var instance = _instance;
        return new ContextInfo
        {
            Id = Id,
            Language = _language.Name,
            Kernel = instance?.Kernel,
            Cwd = Cwd,
            State = IsDead ? ContextStates.Dead : _run is not null ? ContextStates.Busy : ContextStates.Idle,
            ExecutionCount = _executionCount,
            Pid = instance?.Pid ?? 0,
            ExitReason = IsDead ? _exitReason ?? "the interpreter ended" : null,
            CreatedAt = CreatedAt,
        };
    }

    /// <summary>Replaces the interpreter with a fresh one; waits for a running run to end first (it is interrupted).</summary>
    public async Task RestartAsync(CancellationToken cancellationToken)
    {
        Interrupt();
        await _turn.WaitAsync(cancellationToken);
        try
        {
            await StopAsync();
            _executionCount = 0;
            _exitReason = null;
            await LaunchAsync(cancellationToken);
        }
        finally
        {
            _turn.Release();
        }
    }

    /// <summary>Kills the interpreter and every process it started.</summary>
    public async Task StopAsync()
    {
        var instance = _instance;
        if (instance is null)
        {
            return;
        }

        _exitReason ??= "the context was stopped";
        Libc.kill(-instance.Pid, Libc.SIGKILL);
        await instance.Exit;
        instance.Dispose();
    }

    /// <summary>Interrupts the current run, if any, the way the driver understands.</summary>
    public void Interrupt()
    {
        var instance = _instance;
        if (instance is null || _run is null || instance.Exit.IsCompleted)
        {
            return;
        }

        switch (instance.InterruptMode)
        {
            case "message":
                _ = SendAsync(instance, "{\"op\":\"interrupt\"}\n"u8.ToArray());
                break;
            case "group":
                Libc.kill(-instance.Pid, Libc.SIGINT);
                break;
            default:
                Libc.kill(instance.Pid, Libc.SIGINT);
                break;
        }
    }

    /// <summary>Runs <paramref name="code"/> after the runs before it: a <see cref="FrameKind.Started"/> frame when
    /// its turn comes, then its events to <paramref name="frames"/>.
    /// A signal frame from the client or the client going away interrupts it; so does the timeout.</summary>
    public async Task RunAsync(string code, IReadOnlyDictionary<string, string>? env, long? timeoutMs, FrameStream frames, CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken);
        try
        {
            var instance = _instance;
            if (instance is null || instance.Exit.IsCompleted)
            {
                throw new AgentException(AgentErrorCodes.Conflict,
                    $"The code context '{Id}' has stopped ({_exitReason ?? "its interpreter ended"}); its state is lost. Restart it, or delete it and create a new one.");
            }

            await frames.WriteJsonAsync(FrameKind.Started, new StartedMessage(instance.Pid), AgentJsonContext.Default.StartedMessage, cancellationToken);
            await RunTurnAsync(instance, code, env, timeoutMs, frames, cancellationToken);
        }
        finally
        {
            _turn.Release();
        }
    }

    private async Task RunTurnAsync(Instance instance, string code, IReadOnlyDictionary<string, string>? env, long? timeoutMs, FrameStream frames, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var run = new RunState(markers: instance.UsesMarkers ? 2 : 0);
        lock (_lock)
        {
            _run = run;
        }

        var timedOut = false;
        var clientGone = false;
        using var stopReading = new CancellationTokenSource();
        try
        {
            var request = instance.InterruptMode == "group"
                ? [.. Encoding.UTF8.GetBytes(WithShellEnvironment(code, env).Replace("\0", "", StringComparison.Ordinal)), (byte)0]
                : Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new DriverRequest("run", code, env), DriverJsonContext.Default.DriverRequest) + "\n");
            await SendAsync(instance, request);

            // Past the timeout, interrupt; past the grace after that, kill: the run must end.
            using var timeout = timeoutMs is > 0 ? new CancellationTokenSource(TimeSpan.FromMilliseconds(timeoutMs.Value)) : null;
            using var onTimeout = timeout?.Token.Register(() =>
            {
                timedOut = true;
                InterruptThenKill(instance, run);
            });
            var client = WatchClientAsync(frames, instance, run, () => clientGone = true, stopReading.Token);

            await foreach (var e in run.Events.Reader.ReadAllAsync(CancellationToken.None))
            {
                var outgoing = e;
                if (e.Type == CodeEventTypes.End)
                {
                    _executionCount = e.ExecutionCount ?? _executionCount + 1;
                    var status = timedOut && e.Status is CodeRunStatus.Interrupted or CodeRunStatus.Error ? CodeRunStatus.Timeout : e.Status ?? CodeRunStatus.Ok;
                    outgoing = e with { Status = status, DurationMs = stopwatch.ElapsedMilliseconds, ContextId = Id, ExecutionCount = _executionCount };
                }
                else if (timedOut && e.Type == CodeEventTypes.Error && e.Name is "KeyboardInterrupt")
                {
                    outgoing = e with
                    {
                        Name = "TimeoutError",
                        Value = $"The code ran longer than its timeout ({timeoutMs / 1000.0:0.###} s) and was interrupted; the context kept its state. Give a longer timeout, or start long work in the background.",
                    };
                }

                if (!clientGone)
                {
                    try
                    {
                        await frames.WriteJsonAsync(FrameKind.CodeEvent, outgoing, AgentJsonContext.Default.CodeEvent, cancellationToken);
                    }
                    catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
                    {
                        // Nobody reads the rest; the run is interrupted and drained so the next one starts clean.
                        clientGone = true;
                        InterruptThenKill(instance, run);
                    }
                }

                if (e.Type == CodeEventTypes.End)
                {
                    break;
                }
            }

            await stopReading.CancelAsync();
            await client;
        }
        finally
        {
            lock (_lock)
            {
                _run = null;
            }

            // Whatever still arrives for this run is dropped instead of blocking the driver's reader.
            run.Events.Writer.TryComplete();
        }
    }

    /// <summary>Bash gets a run's variables as exports before the code and their old values back after it.</summary>
    private static string WithShellEnvironment(string code, IReadOnlyDictionary<string, string>? env)
    {
        if (env is not { Count: > 0 })
        {
            return code;
        }

        static string Quote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
        var before = new StringBuilder();
        var after = new StringBuilder("\n");
        foreach (var (name, value) in env)
        {
            before.Append($"__cordon_had_{name}=${{{name}+x}}; __cordon_old_{name}=${{{name}-}}; export {name}={Quote(value)}\n");
            after.Append($"if [ -n \"$__cordon_had_{name}\" ]; then export {name}=\"$__cordon_old_{name}\"; else unset {name}; fi; unset __cordon_had_{name} __cordon_old_{name}\n");
        }

        // The code's own status is what the run reports, not the restore's.
        return before + code + "\n__cordon_run_status=$?" + after + "(exit $__cordon_run_status)";
    }

    private void InterruptThenKill(Instance instance, RunState run)
    {
        Interrupt();
        _ = Task.Delay(InterruptGrace).ContinueWith(_ =>
        {
            if (ReferenceEquals(_run, run) && !instance.Exit.IsCompleted)
            {
                _exitReason = $"it did not stop within {InterruptGrace.TotalSeconds:0} s of an interrupt and was killed";
                Libc.kill(-instance.Pid, Libc.SIGKILL);
            }
        }, TaskScheduler.Default);
    }

    /// <summary>Signal frames interrupt; the client closing the connection interrupts too (nobody reads the result).</summary>
    private async Task WatchClientAsync(FrameStream frames, Instance instance, RunState run, Action gone, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                var frame = await frames.ReadAsync(stop);
                if (frame is null)
                {
                    gone();
                    InterruptThenKill(instance, run);
                    return;
                }

                if (frame.Value.Kind == FrameKind.Signal)
                {
                    Interrupt();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is IOException or SocketException or InvalidDataException or ObjectDisposedException)
        {
            gone();
            InterruptThenKill(instance, run);
        }
    }

    private async Task SendAsync(Instance instance, byte[] data)
    {
        await _sendLock.WaitAsync();
        try
        {
            await instance.Channel.SendAsync(data, SocketFlags.None);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The driver is gone; its death is reported to the run by the watcher.
        }
        finally
        {
            _sendLock.Release();
        }
    }

    // ---- the interpreter process --------------------------------------------------------------------

    private async Task LaunchAsync(CancellationToken cancellationToken)
    {
        var env = _environment.BuildEnvironment(_user, _env);
        env.Add("PYTHONUNBUFFERED=1");

        // debugpy (inside ipykernel) warns about frozen modules on every start; the warning helps nobody here.
        env.Add("PYDEVD_DISABLE_FILE_VALIDATION=1");
        var program = CommandRunner.ResolveProgram(_language.Program, env)
            ?? throw new AgentException(AgentErrorCodes.InvalidArgument,
                $"{_language.Name} code needs '{_language.Program}', which this sandbox's image does not have: install it, or use an image that has it (the default image has python3, node and bash).");

        var (channelOurs, channelTheirs) = Spawner.SocketPair();
        var (stdoutOurs, stdoutTheirs) = Spawner.SocketPair();
        var (stderrOurs, stderrTheirs) = Spawner.SocketPair();
        Instance instance;
        try
        {
            var (pid, exit) = _launcher.Launch(_user, program, _language.Arguments(Encoding.ASCII.GetString(_marker)), env, Cwd, -1, stdoutTheirs, stderrTheirs, channelTheirs);
            instance = new Instance(pid, exit, channelOurs, stdoutOurs, stderrOurs);
        }
        catch (SpawnException ex)
        {
            Libc.close(channelOurs);
            Libc.close(stdoutOurs);
            Libc.close(stderrOurs);
            throw new AgentException(AgentErrorCodes.InvalidArgument, $"The {_language.Name} interpreter could not be started: {ex.Message}.");
        }
        finally
        {
            Libc.close(channelTheirs);
            Libc.close(stdoutTheirs);
            Libc.close(stderrTheirs);
        }

        var reading = ReadEventsAsync(instance);
        instance.Pumps = Task.WhenAll(
            PumpAsync(instance, instance.Stdout, CodeEventTypes.Stdout),
            PumpAsync(instance, instance.Stderr, CodeEventTypes.Stderr));
        _ = WatchExitAsync(instance, reading);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(ReadyTimeout);
        CodeEvent ready;
        try
        {
            ready = await instance.Ready.Task.WaitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            Libc.kill(-instance.Pid, Libc.SIGKILL);
            throw new AgentException(AgentErrorCodes.Internal, $"The {_language.Name} interpreter did not become ready within {ReadyTimeout.TotalSeconds:0} s.{instance.DiagnosticsSuffix()}");
        }

        if (ready.Type != CodeEventTypes.Ready)
        {
            Libc.kill(-instance.Pid, Libc.SIGKILL);
            // A driver that says why it cannot serve the language has said all there is to say.
            throw new AgentException(AgentErrorCodes.InvalidArgument, ready.Name is null && ready.Value is { } reason
                ? reason
                : (ready.Value ?? $"The {_language.Name} interpreter could not start.") + instance.DiagnosticsSuffix());
        }

        instance.Kernel = ready.Kernel;
        instance.InterruptMode = ready.Interrupt ?? "signal";
        instance.UsesMarkers = ready.Markers == true || instance.InterruptMode == "group";
        _instance = instance;
    }

    /// <summary>Reads the driver's events and hands each to the current run (events outside a run are dropped).</summary>
    private async Task ReadEventsAsync(Instance instance)
    {
        await using var stream = new NetworkStream(instance.Channel, ownsSocket: false);
        var lines = new LineReader(stream, MaxEventBytes);
        try
        {
            while (await lines.ReadLineAsync() is { } line)
            {
                CodeEvent? e;
                try
                {
                    e = JsonSerializer.Deserialize(line.Span, AgentJsonContext.Default.CodeEvent);
                }
                catch (JsonException)
                {
                    continue;
                }

                if (e is null)
                {
                    continue;
                }

                if (e.Type is CodeEventTypes.Ready or CodeEventTypes.Failed)
                {
                    instance.Ready.TrySetResult(e);
                    continue;
                }

                if (_run is { } run)
                {
                    await run.DeliverAsync(e);
                }
            }
        }
        catch (InvalidDataException)
        {
            _exitReason = $"it sent an event larger than {MaxEventBytes >> 20} MiB";
            Libc.kill(-instance.Pid, Libc.SIGKILL);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Forwards what the driver's processes print, without the end-of-run markers. Jupyter kernels
    /// print only logs here: those are kept (the tail) for the error message if the kernel dies.</summary>
    private async Task PumpAsync(Instance instance, Socket source, string type)
    {
        var buffer = new byte[FrameStream.ChunkSize];
        var pending = new List<byte>();
        var decoder = Encoding.UTF8.GetDecoder();
        try
        {
            while (true)
            {
                var n = await source.ReceiveAsync(buffer, SocketFlags.None);
                if (n == 0)
                {
                    return;
                }

                pending.AddRange(buffer.AsSpan(0, n));
                while (true)
                {
                    var (text, marker) = SplitAtMarker(pending);
                    if (text.Length > 0)
                    {
                        await ForwardAsync(instance, type, decoder, text);
                    }

                    if (!marker)
                    {
                        break;
                    }

                    if (_run is { } run)
                    {
                        await run.MarkerAsync();
                    }
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
        {
        }
    }

    /// <summary>Takes from <paramref name="pending"/> the bytes that surely precede a marker (all of them if no
    /// marker can start in them) and says whether a whole marker followed them (and was removed too).</summary>
    private (byte[] Text, bool Marker) SplitAtMarker(List<byte> pending)
    {
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pending);
        var at = span.IndexOf(_marker);
        if (at >= 0)
        {
            var text = span[..at].ToArray();
            pending.RemoveRange(0, at + _marker.Length);
            return (text, true);
        }

        // Keep back a tail that may be the start of a marker split across reads.
        var keep = 0;
        for (var length = Math.Min(_marker.Length - 1, span.Length); length > 0; length--)
        {
            if (span[^length..].SequenceEqual(_marker.AsSpan(0, length)))
            {
                keep = length;
                break;
            }
        }

        var taken = span[..^keep].ToArray();
        pending.RemoveRange(0, taken.Length);
        return (taken, false);
    }

    private async Task ForwardAsync(Instance instance, string type, Decoder decoder, byte[] bytes)
    {
        if (instance.Kernel is not null || _run is not { } run)
        {
            instance.AddDiagnostics(bytes);
            return;
        }

        var chars = new char[decoder.GetCharCount(bytes, flush: false)];
        decoder.GetChars(bytes, chars, flush: false);
        if (chars.Length > 0)
        {
            await run.DeliverAsync(new CodeEvent { Type = type, Text = new string(chars) });
        }
    }

    /// <summary>When the interpreter ends, the run in progress (if any) learns that it died, and why.</summary>
    private async Task WatchExitAsync(Instance instance, Task reading)
    {
        var status = await instance.Exit;
        await Task.WhenAny(Task.WhenAll(reading, instance.Pumps), Task.Delay(500));
        instance.Ready.TrySetResult(new CodeEvent { Type = CodeEventTypes.Failed, Name = "ContextDied", Value = $"The {_language.Name} interpreter ended as it started ({Describe(status)})." });
        _exitReason ??= Describe(status);
        if (_run is { } run && ReferenceEquals(_instance, instance))
        {
            await run.DeliverAsync(new CodeEvent
            {
                Type = CodeEventTypes.Error,
                Name = "ContextDied",
                Value = $"The interpreter of context '{Id}' ended during this run ({_exitReason}); its state is lost. Restart the context (or, for a default context, just run code again).",
                Traceback = [],
            });
            await run.EndAsync(new CodeEvent { Type = CodeEventTypes.End, Status = CodeRunStatus.Died });
        }
    }

    private string Describe(int status) => Libc.WIFEXITED(status)
        ? _language.Driver == "python_driver.py" && Libc.WEXITSTATUS(status) == KernelDiedStatus
            ? "its Jupyter kernel ended: out of memory, or the code exited"
            : $"it exited with status {Libc.WEXITSTATUS(status)}"
        : Libc.WTERMSIG(status) == Libc.SIGKILL
            ? "it was killed (out of memory, or it ignored an interrupt)"
            : $"it was ended by signal {Libc.WTERMSIG(status)}";

    /// <summary>One interpreter process and its connections.</summary>
    private sealed class Instance(int pid, Task<int> exit, int channel, int stdout, int stderr) : IDisposable
    {
        private const int DiagnosticsBytes = 2048;
        private readonly Queue<byte> _diagnostics = new();

        public int Pid { get; } = pid;

        public Task<int> Exit { get; } = exit;

        public Socket Channel { get; } = new(new SafeSocketHandle(channel, ownsHandle: true));

        public Socket Stdout { get; } = new(new SafeSocketHandle(stdout, ownsHandle: true));

        public Socket Stderr { get; } = new(new SafeSocketHandle(stderr, ownsHandle: true));

        public TaskCompletionSource<CodeEvent> Ready { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Pumps { get; set; } = Task.CompletedTask;

        public string? Kernel { get; set; }

        /// <summary>The driver marks the end of each run's output on stdout and stderr (Bash, and Python run by the driver itself).</summary>
        public bool UsesMarkers { get; set; }

        /// <summary><c>signal</c> (SIGINT to the driver), <c>group</c> (SIGINT to its process group) or <c>message</c> (tell the driver).</summary>
        public string InterruptMode { get; set; } = "signal";

        public void AddDiagnostics(ReadOnlySpan<byte> bytes)
        {
            lock (_diagnostics)
            {
                foreach (var b in bytes)
                {
                    _diagnostics.Enqueue(b);
                }

                while (_diagnostics.Count > DiagnosticsBytes)
                {
                    _diagnostics.Dequeue();
                }
            }
        }

        public string DiagnosticsSuffix()
        {
            lock (_diagnostics)
            {
                var text = Encoding.UTF8.GetString([.. _diagnostics]).Trim();
                return text.Length == 0 ? "" : " Its last words: " + text;
            }
        }

        public void Dispose()
        {
            Channel.Dispose();
            Stdout.Dispose();
            Stderr.Dispose();
        }
    }

    /// <summary>The events of one run. With markers (Bash), the end waits until both output streams passed
    /// their marker, so every byte the run printed reaches the client before its end.</summary>
    private sealed class RunState(int markers)
    {
        private readonly Lock _lock = new();
        private int _markers = markers;
        private CodeEvent? _pendingEnd;
        private bool _ended;

        public Channel<CodeEvent> Events { get; } = Channel.CreateBounded<CodeEvent>(new BoundedChannelOptions(1024) { SingleReader = true });

        public async ValueTask DeliverAsync(CodeEvent e)
        {
            if (e.Type == CodeEventTypes.End)
            {
                await EndAsync(e, waitForMarkers: true);
                return;
            }

            await WriteAsync(e);
        }

        /// <summary>Writes unless the run already ended (then the event has nobody to go to).</summary>
        private async ValueTask WriteAsync(CodeEvent e)
        {
            while (await Events.Writer.WaitToWriteAsync())
            {
                if (Events.Writer.TryWrite(e))
                {
                    return;
                }
            }
        }

        public async ValueTask MarkerAsync()
        {
            CodeEvent? end;
            lock (_lock)
            {
                _markers--;
                end = null;
                if (_markers <= 0)
                {
                    end = _pendingEnd;
                    _pendingEnd = null;
                }
            }

            if (end is not null)
            {
                await EndAsync(end, waitForMarkers: false);
            }
        }

        /// <summary>Ends the run now (the interpreter died), whatever markers are missing.</summary>
        public ValueTask EndAsync(CodeEvent end) => EndAsync(end, waitForMarkers: false);

        private async ValueTask EndAsync(CodeEvent end, bool waitForMarkers)
        {
            lock (_lock)
            {
                if (_ended)
                {
                    return;
                }

                if (waitForMarkers && _markers > 0)
                {
                    _pendingEnd = end;

                    // Code that closed its own stdout never prints the marker: do not wait for it forever.
                    _ = Task.Delay(1000).ContinueWith(_ => MarkerTimeoutAsync().AsTask(), TaskScheduler.Default);
                    return;
                }

                _ended = true;
            }

            await WriteAsync(end);
            Events.Writer.TryComplete();
        }

        private async ValueTask MarkerTimeoutAsync()
        {
            CodeEvent? end;
            lock (_lock)
            {
                end = _pendingEnd;
                _pendingEnd = null;
            }

            if (end is not null)
            {
                await EndAsync(end, waitForMarkers: false);
            }
        }
    }
}
