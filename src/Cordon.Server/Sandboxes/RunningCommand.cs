using System.Runtime.CompilerServices;
using System.Text;
using Cordon.Runtime.Agent;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>A command running in a sandbox, as every interface streams it: its output decoded (bytes and text per
/// stream), its end, its input, signals and terminal size. Any failure of the sandbox or of the connection, also
/// in the middle of the output, is a <see cref="CordonException"/>. Disposing it before the command ended kills
/// the command.</summary>
public sealed class RunningCommand : IAsyncDisposable
{
    private readonly ExecSession _session;
    private readonly IDisposable? _hold;

    /// <param name="hold">Keeps the sandbox from counting as idle while the command is open.</param>
    internal RunningCommand(ExecSession session, CommandSpec spec, string sandboxId, IDisposable? hold = null)
    {
        _session = session;
        _hold = hold;
        Spec = spec;
        SandboxId = sandboxId;
    }

    /// <summary>Most bytes of output in one event.</summary>
    private const int EventBytes = 24 * 1024;

    private static string Decode(Decoder decoder, ReadOnlySpan<byte> bytes)
    {
        // Bytes held back from the piece before (a split sequence) can add a few characters.
        var size = bytes.Length + 4;
        var chars = size <= 1024 ? stackalloc char[size] : new char[size];
        return new string(chars[..decoder.GetChars(bytes, chars, flush: false)]);
    }

    /// <summary>The command's pid inside the sandbox.</summary>
    public int Pid => _session.Pid;

    /// <summary>What was started.</summary>
    public CommandSpec Spec { get; }

    public string SandboxId { get; }

    /// <summary>Output events as they come, then one event with <see cref="CommandEvent.Exit"/>; then the sequence ends.</summary>
    /// <exception cref="CordonException">The sandbox or the connection to it failed.</exception>
    public async IAsyncEnumerable<CommandEvent> ReadEventsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var stdout = Encoding.UTF8.GetDecoder();
        var stderr = Encoding.UTF8.GetDecoder();
        await foreach (var e in AgentFailures.ReadAsync(_session.ReadEventsAsync(cancellationToken), cancellationToken))
        {
            if (e.Kind == ExecEventKind.Exit)
            {
                yield return new CommandEvent { Exit = e.Exit };
                yield break;
            }

            var stream = e.Kind == ExecEventKind.Stdout ? CommandStream.Stdout : CommandStream.Stderr;
            var decoder = stream == CommandStream.Stdout ? stdout : stderr;
            var data = (ReadOnlyMemory<byte>)e.Data;
            for (var at = 0; at < data.Length; at += EventBytes)
            {
                // In pieces small enough that neither their text nor its base64 lands on the large-object heap:
                // a loud command then makes short-lived garbage only, which keeps the server's memory flat.
                var piece = data.Slice(at, Math.Min(EventBytes, data.Length - at));
                yield return new CommandEvent { Stream = stream, Data = piece, Text = Decode(decoder, piece.Span) };
            }
        }
    }

    public Task WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        => AgentFailures.CallAsync(async () => await _session.WriteStdinAsync(data, cancellationToken));

    public Task CloseStdinAsync(CancellationToken cancellationToken)
        => AgentFailures.CallAsync(async () => await _session.CloseStdinAsync(cancellationToken));

    /// <summary>Sends a signal to the command's process group.</summary>
    public Task SignalAsync(int signal, CancellationToken cancellationToken)
        => AgentFailures.CallAsync(async () => await _session.SignalAsync(signal, cancellationToken));

    /// <summary>Resizes the command's terminal.</summary>
    /// <exception cref="CordonException">The command was not started on a terminal.</exception>
    public Task ResizeAsync(int cols, int rows, CancellationToken cancellationToken)
    {
        if (Spec.Terminal is null)
        {
            throw new CordonException(ErrorCode.NoTerminal, "The command was not started on a terminal; only terminals can be resized.");
        }

        if (cols is < 1 or > 1000 || rows is < 1 or > 1000)
        {
            throw CordonException.Invalid($"A terminal of {cols}x{rows} cells cannot be: columns and rows must be between 1 and 1000.");
        }

        return AgentFailures.CallAsync(async () => await _session.ResizeAsync(cols, rows, cancellationToken));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _session.DisposeAsync();
        }
        finally
        {
            _hold?.Dispose();
        }
    }
}
