using System.Text;
using System.Threading.Channels;
using Cordon.Protocol;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>One background command: its output so far (head and tail within the cap, by cursor), how it ended,
/// and its input, signals and terminal.</summary>
public sealed class CommandHandle
{
    private readonly RunningCommand _command;
    private readonly TaskCompletionSource<ExitMessage?> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>Output events waiting for one subscriber at most (each up to one 64 KiB chunk).</summary>
    private const int SubscriberBacklog = 16;

    /// <summary>Most live subscribers of one command.</summary>
    internal const int MaxSubscribers = 8;

    /// <summary>How long the command waits for a subscriber that fell behind before detaching it.</summary>
    private static readonly TimeSpan SlowSubscriberGrace = TimeSpan.FromSeconds(30);

    private readonly Lock _subscribersLock = new();
    private readonly List<Channel<CommandEvent>> _subscribers = [];

    private readonly IDisposable _slot;

    internal CommandHandle(string id, string owner, RunningCommand command, long outputCap, OutputBudget budget, IDisposable slot)
    {
        _slot = slot;
        Id = id;
        Owner = owner;
        _command = command;
        Stdout = new OutputCap(outputCap, budget);
        Stderr = new OutputCap(outputCap, budget);
    }

    /// <summary>The handle is forgotten: its output goes back to the server's budget.</summary>
    internal void Forget()
    {
        Stdout.Dispose();
        Stderr.Dispose();
    }

    public string Id { get; }

    public string Owner { get; }

    public string SandboxId => _command.SandboxId;

    public int Pid => _command.Pid;

    /// <summary>What was started (program, arguments, environment, working directory, terminal).</summary>
    public CommandSpec Spec => _command.Spec;

    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    public OutputCap Stdout { get; }

    public OutputCap Stderr { get; }

    /// <summary>How the command ended; null while it runs, or when the connection to the sandbox broke.</summary>
    public ExitMessage? Exit => _exit.Task.IsCompleted ? _exit.Task.Result : null;

    public bool Running => !_exit.Task.IsCompleted;

    /// <summary>Why the output ended without an exit (the sandbox went away), when it did.</summary>
    public string? Failure { get; private set; }

    public DateTimeOffset? EndedAt { get; private set; }

    /// <summary>Raised with each chunk of output text, for progress notifications.</summary>
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
            await _command.WriteStdinAsync(data, cancellationToken);
        }

        if (close)
        {
            await _command.CloseStdinAsync(cancellationToken);
        }
    }

    public async Task ResizeAsync(int cols, int rows, CancellationToken cancellationToken)
    {
        EnsureRunning();
        await _command.ResizeAsync(cols, rows, cancellationToken);
    }

    public async Task SignalAsync(int signal, CancellationToken cancellationToken)
    {
        EnsureRunning();
        await _command.SignalAsync(signal, cancellationToken);
    }

    /// <summary>Output from now on, as it comes (no exit event): the channel completes when the command ended.
    /// Dispose the subscription to stop receiving.</summary>
    /// <remarks>A subscriber holds a few chunks at most: while one falls behind, the command's output waits for it
    /// (as a pipe would), and one that has not read for <see cref="SlowSubscriberGrace"/> is detached with an error
    /// so the others go on.</remarks>
    /// <exception cref="CordonException">The command has <see cref="MaxSubscribers"/> subscribers already.</exception>
    public Subscription Subscribe()
    {
        var channel = Channel.CreateBounded<CommandEvent>(new BoundedChannelOptions(SubscriberBacklog)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        lock (_subscribersLock)
        {
            if (_subscribers.Count >= MaxSubscribers)
            {
                throw new CordonException(ErrorCode.QuotaExceeded, $"The command '{Id}' is already followed by {MaxSubscribers} readers: disconnect one and retry.") { Subject = Id, RetryAfterSeconds = 5 };
            }

            if (Running)
            {
                _subscribers.Add(channel);
            }
            else
            {
                channel.Writer.TryComplete();
            }
        }

        return new Subscription(channel.Reader, () => Detach(channel, null));
    }

    private void Detach(Channel<CommandEvent> channel, Exception? error)
    {
        lock (_subscribersLock)
        {
            _subscribers.Remove(channel);
        }

        channel.Writer.TryComplete(error);
    }

    /// <summary>Hands one event to every subscriber, waiting for those that are behind.</summary>
    private async Task PublishAsync(CommandEvent e)
    {
        Channel<CommandEvent>[] subscribers;
        lock (_subscribersLock)
        {
            if (_subscribers.Count == 0)
            {
                return;
            }

            subscribers = [.. _subscribers];
        }

        foreach (var subscriber in subscribers)
        {
            if (subscriber.Writer.TryWrite(e))
            {
                continue;
            }

            using var grace = new CancellationTokenSource(SlowSubscriberGrace);
            try
            {
                await subscriber.Writer.WriteAsync(e, grace.Token);
            }
            catch (OperationCanceledException)
            {
                Detach(subscriber, new CordonException(ErrorCode.Conflict, $"The reader of command '{Id}' fell {SlowSubscriberGrace.TotalSeconds:0} s behind its output and was detached; connect again to follow it (the command still runs).") { Subject = Id });
            }
            catch (ChannelClosedException)
            {
                // The subscriber went away meanwhile.
            }
        }
    }

    /// <summary>A live view of a command's output; disposing it detaches.</summary>
    public sealed class Subscription(ChannelReader<CommandEvent> reader, Action detach) : IDisposable
    {
        public ChannelReader<CommandEvent> Reader { get; } = reader;

        public void Dispose() => detach();
    }

    private void EnsureRunning()
    {
        if (!Running)
        {
            throw new CordonException(ErrorCode.CommandEnded, $"The command '{Id}' has already ended; its output and exit are still there to read.") { Subject = Id };
        }
    }

    internal void Pump() => _ = PumpAsync();

    private async Task PumpAsync()
    {
        ExitMessage? exit = null;
        try
        {
            await foreach (var e in _command.ReadEventsAsync(CancellationToken.None))
            {
                if (e.Exit is not null)
                {
                    exit = e.Exit;
                    continue;
                }

                (e.Stream == CommandStream.Stdout ? Stdout : Stderr).Append(e.Text);
                Output?.Invoke(e.Text);
                await PublishAsync(e);
            }
        }
        catch (CordonException ex)
        {
            Failure = ex.Message;
        }
        finally
        {
            await _command.DisposeAsync();
            _slot.Dispose();
            EndedAt = DateTimeOffset.UtcNow;
            lock (_subscribersLock)
            {
                _exit.TrySetResult(exit);
                foreach (var subscriber in _subscribers)
                {
                    subscriber.Writer.TryComplete();
                }

                _subscribers.Clear();
            }
        }
    }
}
