using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Cordon.Agent.Interop;
using Cordon.Protocol;

namespace Cordon.Agent.Code;

/// <summary>The interpreter process: launched with its channel, its events read, its output forwarded without
/// the end-of-run markers, its death reported to the run in progress.</summary>
internal sealed partial class CodeContext
{
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
}
