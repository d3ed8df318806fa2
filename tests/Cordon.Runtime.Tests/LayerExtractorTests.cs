using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using Cordon.Runtime.Images;
using Cordon.Testing;
using Xunit;

namespace Cordon.Runtime.Tests;

public sealed class LayerExtractorTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDirectory("layer");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static MemoryStream Tar(params TarEntry[] entries)
    {
        var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var entry in entries)
            {
                writer.WriteEntry(entry);
            }
        }

        stream.Position = 0;
        return stream;
    }

    private static PaxTarEntry File(string name, string text, int uid = 0, int mode = 0b110_100_100) => new(TarEntryType.RegularFile, name)
    {
        DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text)),
        Uid = uid,
        Gid = uid,
        Mode = (UnixFileMode)mode,
    };

    /// <summary>The review's reproduction: a directory entry whose path a later entry turns into a link to a host
    /// file; its mode (and owner and time), applied after extraction, must not land on the host.</summary>
    [Fact]
    public async Task ExtractAsync_DirectoryLaterReplacedByLinkToHost_ItsMetadataNeverReachesTheHost()
    {
        var host = Path.Combine(_dir, "host");
        Directory.CreateDirectory(Path.Combine(host, "inner"));
        var victim = Path.Combine(host, "victim");
        await System.IO.File.WriteAllTextAsync(victim, "host file");
        System.IO.File.SetUnixFileMode(victim, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        System.IO.File.SetUnixFileMode(Path.Combine(host, "inner"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var layer = Path.Combine(_dir, "layer");
        Directory.CreateDirectory(layer);
        using var tar = Tar(
            new PaxTarEntry(TarEntryType.Directory, "a/") { Mode = (UnixFileMode)0b100_111_111_111, Uid = 4242 }, // 04777
            new PaxTarEntry(TarEntryType.SymbolicLink, "a") { LinkName = victim },
            new PaxTarEntry(TarEntryType.Directory, "d/inner/") { Mode = (UnixFileMode)0b111_111_111 },
            new PaxTarEntry(TarEntryType.SymbolicLink, "d") { LinkName = host });

        await LayerExtractor.ExtractAsync(tar, layer, default);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, System.IO.File.GetUnixFileMode(victim));
        Assert.Equal(0, Owner(victim));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, System.IO.File.GetUnixFileMode(Path.Combine(host, "inner")));
        Assert.Equal(victim, new FileInfo(Path.Combine(layer, "a")).LinkTarget);
    }

    [Fact]
    public async Task ExtractAsync_Archive_KeepsOwnersModesLinksAndDigest()
    {
        using var tar = Tar(
            new PaxTarEntry(TarEntryType.Directory, "usr/bin/") { Mode = (UnixFileMode)0b111_101_101 },
            File("usr/bin/tool", "#!/bin/sh\n", uid: 0, mode: 0b100_111_101_101), // setuid 04755
            File("home/user/notes.txt", "mine", uid: 1000),
            new PaxTarEntry(TarEntryType.SymbolicLink, "bin") { LinkName = "usr/bin" },
            new PaxTarEntry(TarEntryType.HardLink, "usr/bin/tool2") { LinkName = "usr/bin/tool" });
        var expected = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar.ToArray()));

        var (digest, _) = await LayerExtractor.ExtractAsync(tar, _dir, default);

        Assert.Equal(expected, digest);
        Assert.Equal("usr/bin", new FileInfo(Path.Combine(_dir, "bin")).LinkTarget);
        var tool = Path.Combine(_dir, "usr/bin/tool");
        Assert.True((System.IO.File.GetUnixFileMode(tool) & UnixFileMode.SetUser) != 0, "setuid bit lost");
        Assert.Equal(1000, Owner(Path.Combine(_dir, "home/user/notes.txt")));
        Assert.Equal("#!/bin/sh\n", await System.IO.File.ReadAllTextAsync(Path.Combine(_dir, "usr/bin/tool2")));
    }

    [Fact]
    public async Task ExtractAsync_Gzip_Detected()
    {
        using var tar = Tar(File("a.txt", "gz"));
        var gz = new MemoryStream();
        await using (var zip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            await tar.CopyToAsync(zip);
        }

        gz.Position = 0;
        await LayerExtractor.ExtractAsync(gz, _dir, default);

        Assert.Equal("gz", await System.IO.File.ReadAllTextAsync(Path.Combine(_dir, "a.txt")));
    }

    [Fact]
    public async Task ExtractAsync_DotDotEntry_Refused()
    {
        using var tar = Tar(File("../escaped.txt", "x"));

        await Assert.ThrowsAsync<InvalidDataException>(() => LayerExtractor.ExtractAsync(tar, _dir, default));
        Assert.False(System.IO.File.Exists(Path.Combine(Path.GetDirectoryName(_dir)!, "escaped.txt")));
    }

    [Fact]
    public async Task ExtractAsync_WriteThroughPlantedSymlink_Refused()
    {
        var outside = TestPaths.NewTempDirectory("outside");
        try
        {
            using var tar = Tar(
                new PaxTarEntry(TarEntryType.SymbolicLink, "etc") { LinkName = outside },
                File("etc/passwd", "owned"));

            await Assert.ThrowsAsync<InvalidDataException>(() => LayerExtractor.ExtractAsync(tar, _dir, default));
            Assert.False(System.IO.File.Exists(Path.Combine(outside, "passwd")));
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [Fact]
    public async Task ExtractAsync_OciWhiteouts_BecomeOverlayWhiteouts()
    {
        using var tar = Tar(
            new PaxTarEntry(TarEntryType.Directory, "etc/") { Mode = (UnixFileMode)0b111_101_101 },
            File("etc/.wh.shadow", ""),
            new PaxTarEntry(TarEntryType.Directory, "var/") { Mode = (UnixFileMode)0b111_101_101 },
            File("var/.wh..wh..opq", ""));

        await LayerExtractor.ExtractAsync(tar, _dir, default);

        var whiteout = Path.Combine(_dir, "etc/shadow");
        Assert.Equal(0x2000u, Mode(whiteout) & 0xF000u); // a character device (0:0)
        Assert.False(System.IO.File.Exists(Path.Combine(_dir, "etc/.wh.shadow")));
        Assert.False(System.IO.File.Exists(Path.Combine(_dir, "var/.wh..wh..opq")));
    }

    [Fact]
    public async Task ExtractAsync_NotATarball_ThrowsInvalidData()
    {
        using var junk = new MemoryStream(new byte[4096].Select((_, i) => (byte)(i * 7)).ToArray());

        await Assert.ThrowsAsync<InvalidDataException>(() => LayerExtractor.ExtractAsync(junk, _dir, default));
    }

    private static int Owner(string path) => Lstat(path).Uid;

    private static uint Mode(string path) => Lstat(path).Mode;

    private static (int Uid, uint Mode) Lstat(string path)
    {
        Assert.Equal(0, Cordon.Runtime.Interop.Syscalls.lstat(path, out var st));
        return ((int)st.Uid, st.Mode);
    }
}
