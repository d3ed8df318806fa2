using Cordon.Protocol;
using Cordon.Runtime.Agent;

namespace Cordon.Server.Sandboxes;

/// <summary>A file being read from a sandbox: what it is, and its content read straight from the sandbox as a
/// stream (nothing is buffered whole). A failure in the middle is an <see cref="IOException"/>, as streams do.</summary>
public sealed class SandboxFile : Stream
{
    private readonly FileDownload _download;

    internal SandboxFile(FileDownload download) => _download = download;

    public FileEntry Entry => _download.Entry;

    public override long Length => _download.Length;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        => _download.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => _download.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => _download.Read(buffer, offset, count);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _download.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _download.DisposeAsync();
        await base.DisposeAsync();
    }
}
