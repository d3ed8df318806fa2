using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>Images as users bring them: OCI image layouts (what skopeo, buildah and docker save produce).</summary>
public sealed class ImageImportTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    [Fact]
    public async Task Import_OciLayoutWithTwoLayers_AppliesWhiteoutsAndConfig()
    {
        // Layer 1: the busybox root plus two files. Layer 2 deletes one of them (an OCI whiteout).
        var baseLayer = await GzipAsync(WithExtraFiles(BusyboxImage.CreateTarball(), ("etc/keep.txt", "kept"), ("etc/secret.txt", "deleted later")));
        var upperLayer = await GzipAsync(Tar(("etc/.wh.secret.txt", ""), ("etc/added.txt", "from layer 2")));
        var config = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
        {
            architecture = "amd64",
            os = "linux",
            config = new { Env = new[] { "PATH=/bin", "FROM_IMAGE=yes" }, WorkingDir = "/tmp", User = "user" },
            rootfs = new { type = "layers", diff_ids = Array.Empty<string>() },
        }));
        var layout = OciLayout(config, baseLayer, upperLayer);
        var name = "oci-" + Guid.NewGuid().ToString("N")[..8];

        var image = await Server.Client.ImportImageAsync(name, layout);
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { Image = name });
        var result = await sandbox.ShAsync("cat /etc/keep.txt /etc/added.txt; test -e /etc/secret.txt && echo LEAK; echo $FROM_IMAGE; id -un; pwd");

        Assert.Equal(2, image.Layers.Count);
        Assert.Equal("user", image.User);
        Assert.Equal("keptfrom layer 2yes\nuser\n/tmp\n", result.Stdout);
    }

    [Fact]
    public async Task Import_NotAnArchive_BadRequestAndNoImage()
    {
        var name = "junk-" + Guid.NewGuid().ToString("N")[..8];

        var error = await Assert.ThrowsAsync<CordonApiException>(() => Server.Client.ImportImageAsync(name, new MemoryStream(RandomNumberGenerator.GetBytes(10_000))));

        Assert.Equal(400, error.Status);
        Assert.DoesNotContain(await Server.Client.ListImagesAsync(), i => i.Name == name);
    }

    [Fact]
    public async Task Import_ArchiveEscapingItsRoot_Refused()
    {
        var name = "evil-" + Guid.NewGuid().ToString("N")[..8];

        var error = await Assert.ThrowsAsync<CordonApiException>(() => Server.Client.ImportImageAsync(name, Tar(("../../../../tmp/cordon-pwned", "x"))));

        Assert.Equal(400, error.Status);
        Assert.False(File.Exists("/tmp/cordon-pwned"));
    }

    [Fact]
    public async Task Import_ReservedOrInvalidName_Refused()
    {
        using var reserved = await Server.Http.PostAsync("/v1/images?name=default", new StreamContent(Tar(("a", "b"))));
        using var invalid = await Server.Http.PostAsync("/v1/images?name=Bad%20Name", new StreamContent(Tar(("a", "b"))));

        Assert.Equal(HttpStatusCode.Conflict, reserved.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
    }

    private static MemoryStream Tar(params (string Name, string Text)[] files)
    {
        var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, text) in files)
            {
                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name)
                {
                    Mode = (UnixFileMode)0b110_100_100,
                    DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)),
                });
            }
        }

        stream.Position = 0;
        return stream;
    }

    private static MemoryStream WithExtraFiles(MemoryStream tarball, params (string Name, string Text)[] files)
    {
        var combined = new MemoryStream();
        using (var writer = new TarWriter(combined, TarEntryFormat.Pax, leaveOpen: true))
        {
            using var reader = new TarReader(tarball);
            while (reader.GetNextEntry(copyData: true) is { } entry)
            {
                writer.WriteEntry(entry);
            }

            foreach (var (name, text) in files)
            {
                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)0b110_100_100, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) });
            }
        }

        combined.Position = 0;
        return combined;
    }

    private static async Task<byte[]> GzipAsync(Stream tar)
    {
        var output = new MemoryStream();
        await using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            await tar.CopyToAsync(gzip);
        }

        return output.ToArray();
    }

    /// <summary>An OCI image layout (index.json → manifest → config and layers, all content-addressed blobs) as a tarball.</summary>
    private static MemoryStream OciLayout(byte[] config, params byte[][] layers)
    {
        var blobs = new Dictionary<string, byte[]>();
        string Add(byte[] blob)
        {
            var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(blob));
            blobs[digest] = blob;
            return digest;
        }

        var manifest = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
        {
            schemaVersion = 2,
            mediaType = "application/vnd.oci.image.manifest.v1+json",
            config = new { mediaType = "application/vnd.oci.image.config.v1+json", digest = Add(config), size = config.Length },
            layers = layers.Select(l => new { mediaType = "application/vnd.oci.image.layer.v1.tar+gzip", digest = Add(l), size = l.Length }).ToArray(),
        }));
        var manifestDigest = Add(manifest);
        var index = JsonSerializer.Serialize(new
        {
            schemaVersion = 2,
            manifests = new[] { new { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = manifestDigest, size = manifest.Length, platform = new { architecture = "amd64", os = "linux" } } },
        });

        var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            void File(string name, byte[] data) => writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)0b110_100_100, DataStream = new MemoryStream(data) });
            File("oci-layout", Encoding.UTF8.GetBytes("{\"imageLayoutVersion\":\"1.0.0\"}"));
            File("index.json", Encoding.UTF8.GetBytes(index));
            foreach (var (digest, data) in blobs)
            {
                File("blobs/sha256/" + digest["sha256:".Length..], data);
            }
        }

        stream.Position = 0;
        return stream;
    }
}
