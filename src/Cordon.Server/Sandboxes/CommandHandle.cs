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
    private readonly Lock _subscribersLock = new();
    private readonly List<ChannelWriter<CommandEvent>> _subscribers = [];

    internal CommandHandle(string id, string owner, RunningCommand command, long outputCap)
    {
        Id = id;
        Owner = owner;
        _command = command;
        Stdout = new OutputCap(outputCap);
        Stderr = new OutputCap(outputCap);
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
    public Subscription Subscribe()
    {
        var channel = Channel.CreateUnbounded<CommandEvent>(new UnboundedChannelOptions { SingleReader = true });
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
                lock (_subscribersLock)
                {
                    foreach (var subscriber in _subscribers)
                    {
                        subscriber.TryWrite(e);
                    }
                }
            }
        }
        catch (CordonException ex)
        {
            Failure = ex.Message;
        }
        finally
        {
            await _command.DisposeAsync();
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
}
