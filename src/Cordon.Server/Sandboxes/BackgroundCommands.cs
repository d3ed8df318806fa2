using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Cordon.Protocol;
using Cordon.Runtime.Agent;
using Cordon.Server.Auth;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>Commands whose life is not tied to one HTTP request (MCP's run_command, E2B's processes), by handle:
/// their output is kept (the newest part, within a cap) so an agent can page through it with a cursor, and
/// streamed live to whoever attaches; they take input and signals, and can be waited for. MCP's foreground
/// commands are handles too, so a capped result can always point at the full output.</summary>
public sealed class BackgroundCommands
{
    /// <summary>Handles of ended commands are forgotten after this long.</summary>
    private static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    private const int MaxHandles = 512;

    private readonly ConcurrentDictionary<string, CommandHandle> _handles = new(StringComparer.Ordinal);

    public CommandHandle Start(CallerIdentity caller, string sandboxId, ExecSession session, ExecRequest request)
        => Start(caller, sandboxId, session, request, subscribe: false).Handle;

    /// <param name="subscribe">Also return a live view of the output that misses nothing (taken before the
    /// output is read).</param>
    public (CommandHandle Handle, CommandHandle.Subscription? Live) Start(CallerIdentity caller, string sandboxId, ExecSession session, ExecRequest request, bool subscribe)
    {
        Forget();
        var handle = new CommandHandle("cmd-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)), caller.KeyId, sandboxId, session, request);
        var live = subscribe ? handle.Subscribe() : null;
        handle.Pump();
        _handles[handle.Id] = handle;
        return (handle, live);
    }

    /// <summary>The caller's command with this pid in this sandbox (running, or ended within the retention).</summary>
    public CommandHandle? FindByPid(CallerIdentity caller, string sandboxId, int pid)
        => _handles.Values.Where(h => h.SandboxId == sandboxId && h.Pid == pid && caller.CanSee(h.Owner)).MaxBy(h => h.StartedAt);

    /// <summary>The caller's running commands in this sandbox.</summary>
    public IEnumerable<CommandHandle> Running(CallerIdentity caller, string sandboxId)
        => _handles.Values.Where(h => h.SandboxId == sandboxId && h.Running && caller.CanSee(h.Owner));

    /// <exception cref="CordonException">404 when the handle is unknown, forgotten, or another tenant's.</exception>
    public CommandHandle Get(CallerIdentity caller, string id)
        => _handles.TryGetValue(id, out var handle) && caller.CanSee(handle.Owner)
            ? handle
            : throw CordonException.NotFound("command_not_found", $"There is no command '{id}': handles come from run_command with background=true (or a capped run_command result), and are forgotten an hour after the command ended.");

    private void Forget()
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var (id, handle) in _handles)
        {
            if (handle.EndedAt is { } ended && now - ended > Retention)
            {
                _handles.TryRemove(id, out _);
            }
        }

        while (_handles.Count >= MaxHandles && _handles.Values.Where(h => h.EndedAt is not null).MinBy(h => h.EndedAt) is { } oldest)
        {
            _handles.TryRemove(oldest.Id, out _);
        }
    }
}

/// <summary>One command: its output so far, how it ended, and its input and signals.</summary>
public sealed class CommandHandle
{
    /// <summary>The most characters kept per stream; older output is dropped (a cursor before it says so).</summary>
    private const int KeptChars = 8 << 20;

    private readonly ExecSession _session;
    private readonly TaskCompletionSource<ExitMessage?> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _subscribersLock = new();
    private readonly List<ChannelWriter<ExecEvent>> _subscribers = [];

    internal CommandHandle(string id, string owner, string sandboxId, ExecSession session, ExecRequest request)
    {
        Id = id;
        Owner = owner;
        SandboxId = sandboxId;
        Request = request;
        _session = session;
    }

    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>What was started (program, arguments, environment, working directory).</summary>
    public ExecRequest Request { get; }

    public string Id { get; }

    public string Owner { get; }

    public string SandboxId { get; }

    public int Pid => _session.Pid;

    public OutputLog Stdout { get; } = new(KeptChars);

    public OutputLog Stderr { get; } = new(KeptChars);

    /// <summary>How the command ended; null while it runs, or when the connection to the sandbox broke.</summary>
    public ExitMessage? Exit => _exit.Task.IsCompleted ? _exit.Task.Result : null;

    public bool Running => !_exit.Task.IsCompleted;

    public string? Failure { get; private set; }

    public DateTimeOffset? EndedAt { get; private set; }

    /// <summary>Raised with each chunk of output, for progress notifications.</summary>
    public event Action<string>? Output;

    /// <summary>Waits until the command ends or <paramref name="timeout"/> passes; true when it ended.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await _exit.Task.WaitAsync(timeout, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public Task WriteStdinAsync(string data, bool close, CancellationToken cancellationToken)
        => WriteStdinAsync(Encoding.UTF8.GetBytes(data), close, cancellationToken);

    public async Task WriteStdinAsync(ReadOnlyMemory<byte> data, bool close, CancellationToken cancellationToken)
    {
        EnsureRunning();
        if (data.Length > 0)
        {
            await _session.WriteStdinAsync(data, cancellationToken);
        }

        if (close)
        {
            await _session.CloseStdinAsync(cancellationToken);
        }
    }

    /// <summary>Output from now on, as it comes (stdout and stderr events; no exit event): the channel completes
    /// when the command ended. Dispose the subscription to stop receiving.</summary>
    public Subscription Subscribe()
    {
        var channel = Channel.CreateUnbounded<ExecEvent>(new UnboundedChannelOptions { SingleReader = true });
        lock (_subscribersLock)
        {
            if (Running)
            {
                _subscribers.Add(channel.Writer);
            }
            else
            {
                channel.Writer.TryComplete();
            }
        }

        return new Subscription(channel.Reader, () =>
        {
            lock (_subscribersLock)
            {
                _subscribers.Remove(channel.Writer);
            }

            channel.Writer.TryComplete();
        });
    }

    /// <summary>A live view of a command's output; disposing it detaches.</summary>
    public sealed class Subscription(ChannelReader<ExecEvent> reader, Action detach) : IDisposable
    {
        public ChannelReader<ExecEvent> Reader { get; } = reader;

        public void Dispose() => detach();
    }

    public async Task ResizeAsync(int cols, int rows, CancellationToken cancellationToken)
    {
        EnsureRunning();
        if (Request.Pty is null)
        {
            throw CordonException.Conflict("no_terminal", $"The command '{Id}' was not started on a terminal; only terminals can be resized.");
        }

        await _session.ResizeAsync(cols, rows, cancellationToken);
    }

    public async Task SignalAsync(int signal, CancellationToken cancellationToken)
    {
        EnsureRunning();
        await _session.SignalAsync(signal, cancellationToken);
    }

    private void EnsureRunning()
    {
        if (!Running)
        {
            throw CordonException.Conflict("command_ended", $"The command '{Id}' has already ended; read its output with read_command_output.");
        }
    }

    internal void Pump() => _ = PumpAsync();

    private async Task PumpAsync()
    {
        var stdout = Encoding.UTF8.GetDecoder();
        var stderr = Encoding.UTF8.GetDecoder();
        ExitMessage? exit = null;
        try
        {
            await foreach (var e in _session.ReadEventsAsync(CancellationToken.None))
            {
                switch (e.Kind)
                {
                    case ExecEventKind.Stdout:
                        Append(Stdout, stdout, e.Data);
                        Publish(e);
                        break;
                    case ExecEventKind.Stderr:
                        Append(Stderr, stderr, e.Data);
                        Publish(e);
                        break;
                    case ExecEventKind.Exit:
                        exit = e.Exit;
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is AgentErrorException or IOException or InvalidDataException or ObjectDisposedException)
        {
            Failure = "The connection to the sandbox broke (" + ex.Message + "); the sandbox may have been destroyed.";
        }
        finally
        {
            await _session.DisposeAsync();
            EndedAt = DateTimeOffset.UtcNow;
            lock (_subscribersLock)
            {
                _exit.TrySetResult(exit);
                foreach (var subscriber in _subscribers)
                {
                    subscriber.TryComplete();
                }

                _subscribers.Clear();
            }
        }
    }

    private void Publish(ExecEvent e)
    {
        lock (_subscribersLock)
        {
            foreach (var subscriber in _subscribers)
            {
                subscriber.TryWrite(e);
            }
        }
    }

    private void Append(OutputLog log, Decoder decoder, ReadOnlySpan<byte> bytes)
    {
        var chars = new char[decoder.GetCharCount(bytes, flush: false)];
        decoder.GetChars(bytes, chars, flush: false);
        var text = new string(chars);
        log.Append(text);
        Output?.Invoke(text);
    }
}

/// <summary>Output addressed by absolute character offsets (cursors), of which the newest part is kept.</summary>
public sealed class OutputLog(int keep)
{
    private readonly Lock _lock = new();
    private readonly StringBuilder _kept = new();
    private long _dropped;

    /// <summary>Characters written so far: the cursor at the end.</summary>
    public long Length
    {
        get
        {
            lock (_lock)
            {
                return _dropped + _kept.Length;
            }
        }
    }

    public void Append(string text)
    {
        lock (_lock)
        {
            _kept.Append(text);
            if (_kept.Length > keep)
            {
                var drop = _kept.Length - keep;
                _kept.Remove(0, drop);
                _dropped += drop;
            }
        }
    }

    /// <summary>Up to <paramref name="max"/> characters from <paramref name="cursor"/>; where output before
    /// the kept part was asked for, reading starts at the oldest kept character.</summary>
    public (string Text, long Start, long Next) Read(long cursor, int max)
    {
        lock (_lock)
        {
            var start = Math.Max(cursor, _dropped);
            var offset = (int)Math.Min(start - _dropped, _kept.Length);
            var count = Math.Min(max, _kept.Length - offset);
            return (_kept.ToString(offset, count), _dropped + offset, _dropped + offset + count);
        }
    }
}
