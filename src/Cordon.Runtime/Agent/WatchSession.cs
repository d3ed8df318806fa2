using System.Runtime.CompilerServices;
using Cordon.Protocol;

namespace Cordon.Runtime.Agent;

/// <summary>A directory being watched in a sandbox; disposing it stops the watch.</summary>
public sealed class WatchSession : IAsyncDisposable
{
    private readonly FrameStream _frames;

    internal WatchSession(FrameStream frames) => _frames = frames;

    /// <summary>The changes as they happen; ends when the sandbox's agent closes the watch.</summary>
    public async IAsyncEnumerable<WatchEvent> ReadEventsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (await _frames.ReadAsync(cancellationToken) is { } frame)
        {
            if (frame.Kind != FrameKind.WatchEvent)
            {
                throw AgentClient.Unexpected(frame);
            }

            yield return FrameStream.ParseJson(frame, AgentJsonContext.Default.WatchEvent);
        }
    }

    public ValueTask DisposeAsync() => _frames.DisposeAsync();
}
