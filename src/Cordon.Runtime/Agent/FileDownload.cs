using Cordon.Protocol;

namespace Cordon.Runtime.Agent;

/// <summary>A file being read from a sandbox: its metadata, and its content as a stream read straight
/// from the agent connection (no buffering of the whole file).</summary>
public sealed class FileDownload : ReadOnlyStream
{
    private readonly FrameStream _frames;
    private ReadOnlyMemory<byte> _pending;
    private byte[] _copy = [];
    private bool _ended;

    internal FileDownload(FrameStream frames, FileEntry entry)
    {
        _frames = frames;
        Entry = entry;
    }

    public FileEntry Entry { get; }

    public override long Length => Entry.Size;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_pending.IsEmpty)
        {
            if (_ended)
            {
                return 0;
            }

            var frame = await _frames.ReadAsync(cancellationToken)
                ?? throw new IOException("The sandbox's agent closed the connection in the middle of a file.");
            switch (frame.Kind)
            {
                case FrameKind.Data:
                    // The frame buffer is reused by the next read: keep a copy.
                    if (_copy.Length < frame.Payload.Length)
                    {
                        _copy = new byte[frame.Payload.Length];
                    }

                    frame.Payload.CopyTo(_copy);
                    _pending = _copy.AsMemory(0, frame.Payload.Length);
                    break;
                case FrameKind.DataEnd:
                    _ended = true;
                    break;
                case FrameKind.Error:
                    var error = FrameStream.ParseJson(frame, AgentJsonContext.Default.ErrorMessage);
                    throw new IOException(error.Message);
                default:
                    throw new InvalidDataException($"Unexpected {frame.Kind} frame in a file download.");
            }
        }

        var n = Math.Min(buffer.Length, _pending.Length);
        _pending[..n].CopyTo(buffer);
        _pending = _pending[n..];
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _frames.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _frames.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
