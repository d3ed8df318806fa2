using Cordon.Protocol.Api;

namespace Cordon.Server.Images.Builds;

/// <summary>A build's log: events in order, each with its offset, read from any offset while the build runs and
/// after it ended. Bounded: beyond <see cref="MaxEvents"/> or <see cref="MaxChars"/> the oldest output lines go (step,
/// error and done events stay), so a RUN that prints forever costs a bounded amount of memory.</summary>
public sealed class BuildLog
{
    public const int MaxEvents = 10_000;
    /// <summary>Characters kept; with <see cref="ImageBuilder"/>'s 64 logs kept, 128 Mi characters at the very most.</summary>
    public const long MaxChars = 2L << 20;

    private readonly Lock _lock = new();
    private readonly LinkedList<BuildEvent> _events = new();
    private long _next;
    private long _chars;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool Completed { get; private set; }

    public void Append(BuildEvent e)
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            if (Completed)
            {
                return;
            }

            _events.AddLast(e with { Offset = _next++, Time = DateTimeOffset.UtcNow });
            _chars += Size(e);
            for (var node = _events.First; node is not null && (_events.Count > MaxEvents || _chars > MaxChars);)
            {
                var following = node.Next;
                if (node.Value.Type == "output")
                {
                    _chars -= Size(node.Value);
                    _events.Remove(node);
                }

                node = following;
            }

            Completed = e.Type == "done";
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.SetResult();
    }

    /// <summary>The events from <paramref name="offset"/> on (those dropped meanwhile are skipped).</summary>
    public IReadOnlyList<BuildEvent> Read(long offset)
    {
        lock (_lock)
        {
            return [.. _events.Where(e => e.Offset >= offset)];
        }
    }

    /// <summary>Waits until an event at or after <paramref name="offset"/> exists, or the log is complete.</summary>
    public Task WaitAsync(long offset, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Completed || _next > offset ? Task.CompletedTask : _changed.Task.WaitAsync(cancellationToken);
        }
    }

    private static long Size(BuildEvent e) => 64 + (e.Message?.Length ?? 0) + (e.Instruction?.Length ?? 0) + (e.LastLines?.Sum(l => l.Length) ?? 0);
}
