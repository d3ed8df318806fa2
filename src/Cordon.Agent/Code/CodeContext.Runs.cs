using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Cordon.Agent.Interop;
using Cordon.Protocol;

namespace Cordon.Agent.Code;

/// <summary>Runs, one at a time in their turn: code sent to the driver, its events back to the client, and
/// interrupts (a signal frame, the client going away, the timeout).</summary>
internal sealed partial class CodeContext
{
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
                    // The driver is done with the run: from here an interrupt (the client closing its connection
                    // as soon as it has the end) would reach an idle interpreter.
                    lock (_lock)
                    {
                        _run = null;
                    }

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
                        try
                        {
                            await frames.WriteJsonAsync(FrameKind.CodeEvent, outgoing, AgentJsonContext.Default.CodeEvent, cancellationToken);
                        }
                        catch (MessageTooLargeException)
                        {
                            // Nothing was sent of it: the event goes out without what made it too large, and says so.
                            await frames.WriteJsonAsync(FrameKind.CodeEvent, Shrunk(outgoing), AgentJsonContext.Default.CodeEvent, cancellationToken);
                        }
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

    /// <summary>An event larger than the protocol carries: each large value of a result (a figure of tens of MiB)
    /// becomes a note, and text past a few MiB is cut, so the run still reports what it can.</summary>
    private static CodeEvent Shrunk(CodeEvent e)
    {
        const int Keep = 4 << 20;
        static string Cut(string? text) => text is { Length: > Keep } ? text[..Keep] + $"\n[… {text.Length - Keep} characters left out: the event was too large]" : text ?? "";

        var data = e.Data?.ToDictionary(d => d.Key, d => d.Value.ValueKind == JsonValueKind.String && d.Value.GetString()!.Length > Keep
            ? JsonSerializer.SerializeToElement($"({d.Key} of {d.Value.GetString()!.Length >> 20} MiB left out: larger than one answer may carry; save it to a file and read the file)", AgentJsonContext.Default.String)
            : d.Value);
        return e with { Data = data, Text = e.Text is null ? null : Cut(e.Text), Value = e.Value is null ? null : Cut(e.Value) };
    }
}
