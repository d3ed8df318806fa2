using System.Runtime.CompilerServices;
using Cordon.Protocol;

namespace Cordon.Runtime.Agent;

/// <summary>Code running in a context: its events, and a way to interrupt it. Disposing it before the run
/// ended interrupts the run (the context keeps its state).</summary>
public sealed class CodeRunSession : IAsyncDisposable
{
    private readonly FrameStream _frames;

    internal CodeRunSession(FrameStream frames) => _frames = frames;

    /// <summary>The run's events in order; the last is the <c>end</c> event.</summary>
    public async IAsyncEnumerable<CodeEvent> ReadEventsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (true)
        {
            var frame = await _frames.ReadAsync(cancellationToken)
                ?? throw new AgentErrorException(AgentErrorCodes.Internal, "The sandbox's agent closed the connection before the code finished; the sandbox may have run out of memory or been destroyed.");
            if (frame.Kind != FrameKind.CodeEvent)
            {
                throw AgentClient.Unexpected(frame);
            }

            var e = FrameStream.ParseJson(frame, AgentJsonContext.Default.CodeEvent);
            yield return e;
            if (e.Type == CodeEventTypes.End)
            {
                yield break;
            }
        }
    }

    /// <summary>Interrupts the run (KeyboardInterrupt in Python); its end event follows.</summary>
    public ValueTask InterruptAsync(CancellationToken cancellationToken)
        => _frames.WriteJsonAsync(FrameKind.Signal, new SignalMessage(2), AgentJsonContext.Default.SignalMessage, cancellationToken);

    public ValueTask DisposeAsync() => _frames.DisposeAsync();
}
