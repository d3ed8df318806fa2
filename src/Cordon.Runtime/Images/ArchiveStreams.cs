using System.IO.Compression;

namespace Cordon.Runtime.Images;

/// <summary>Opens a tar stream that may be compressed: gzip and zstd are recognised by their magic bytes (as registries
/// serve layers and clients send archives); anything else is read as a plain tar.</summary>
public static class ArchiveStreams
{
    public static async Task<Stream> OpenAsync(Stream archive, CancellationToken cancellationToken)
    {
        var buffered = new BufferedStream(archive, 1 << 16);
        var magic = new byte[4];
        var peeked = await buffered.ReadAtLeastAsync(magic, magic.Length, throwOnEndOfStream: false, cancellationToken);
        Stream tar = new PrefixedStream(magic.AsMemory(0, peeked), buffered);
        if (peeked >= 2 && magic[0] == 0x1f && magic[1] == 0x8b)
        {
            return new GZipStream(tar, CompressionMode.Decompress);
        }

        if (peeked == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
        {
            return new ZstdSharp.DecompressionStream(tar);
        }

        return tar;
    }
}
