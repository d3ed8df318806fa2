using System.Runtime.CompilerServices;
using Cordon.Protocol;

namespace Cordon.Runtime.Agent;

/// <summary>A command running in a sandbox: its events, and a way to feed it input and signals.
/// Disposing it before the command ended kills the command.</summary>
public sealed class ExecSession : IAsyncDisposable
{
    private readonly FrameStream _frames;

    internal ExecSession(FrameStream frames, int pid)
    {
        _frames = frames;
        Pid = pid;
    }

    /// <summary>The command's pid inside the sandbox (0 when the program was not found).</summary>
    public int Pid { get; }

    /// <summary>Output and exit events, in the order the agent sent them; ends after the exit event.</summary>
    public async IAsyncEnumerable<ExecEvent> ReadEventsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (true)
        {
            var frame = await _frames.ReadAsync(cancellationToken)
                ?? throw new AgentErrorException(AgentErrorCodes.Internal, "The sandbox's agent closed the connection before the command ended; the sandbox may have run out of memory or been destroyed.");
            switch (frame.Kind)
            {
                case FrameKind.Stdout:
                    yield return ExecEvent.Output(ExecEventKind.Stdout, frame.Payload.Span);
                    break;
                case FrameKind.Stderr:
                    yield return ExecEvent.Output(ExecEventKind.Stderr, frame.Payload.Span);
                    break;
                case FrameKind.Exit:
                    yield return ExecEvent.Ended(FrameStream.ParseJson(frame, AgentJsonContext.Default.ExitMessage));
                    yield break;
                case FrameKind.Error:
                    var error = FrameStream.ParseJson(frame, AgentJsonContext.Default.ErrorMessage);
                    throw new AgentErrorException(error.Code, error.Message);
                default:
                    throw new InvalidDataException($"Unexpected {frame.Kind} frame from the agent during a command.");
            }
        }
    }

    public ValueTask WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        => WriteChunkedAsync(FrameKind.Stdin, data, cancellationToken);

    public ValueTask CloseStdinAsync(CancellationToken cancellationToken)
        => _frames.WriteAsync(FrameKind.StdinClose, ReadOnlyMemory<byte>.Empty, cancellationToken);

    /// <summary>Resizes the command's terminal (commands started with <see cref="ExecRequest.Pty"/>).</summary>
    public ValueTask ResizeAsync(int cols, int rows, CancellationToken cancellationToken)
        => _frames.WriteJsonAsync(FrameKind.Resize, new TerminalSize(cols, rows), AgentJsonContext.Default.TerminalSize, cancellationToken);

    public ValueTask SignalAsync(int signal, CancellationToken cancellationToken)
        => _frames.WriteJsonAsync(FrameKind.Signal, new SignalMessage(signal), AgentJsonContext.Default.SignalMessage, cancellationToken);

    private async ValueTask WriteChunkedAsync(FrameKind kind, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        for (var offset = 0; offset < data.Length; offset += FrameStream.ChunkSize)
        {
            await _frames.WriteAsync(kind, data.Slice(offset, Math.Min(FrameStream.ChunkSize, data.Length - offset)), cancellationToken);
        }
    }

    public ValueTask DisposeAsync() => _frames.DisposeAsync();
}
