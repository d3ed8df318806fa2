using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Cordon.Client;
using Cordon.Protocol.Api;

namespace Cordon.Bench;

/// <summary>Issue 18's targets, each against its reference in the same run: a rebuild whose every step is cached
/// (≤ 1 s; the first build of the same Dockerfile beside it); create → first request to a ready template's server
/// against create → first command (≤ 1.5×), cold and from a warm pool; a pull whose layers are all stored (≤ 0.5 s;
/// the first pull of the same image beside it), from a local registry when bench/run could start one.</summary>
internal static class TemplatesBench
{
    private const string Dockerfile = """
        FROM bench-busybox
        ARG VERSION=1
        ENV APP_HOME=/srv/app
        WORKDIR /srv/app
        COPY site/ ./
        RUN echo "built $VERSION" > built.txt && sleep 0.2
        RUN mkdir -p /www && cp -r /srv/app/. /www/
        USER root
        CMD ["httpd", "-f", "-p", "8000", "-h", "/www"]
        """;

    public static async Task<(IReadOnlyList<Samples> Samples, IReadOnlyList<string> Lines)> RunAsync(CordonClient client, int iterations, string? registry)
    {
        var samples = new List<Samples>();
        var lines = new List<string>();

        // A Dockerfile of 9 steps: built once (every step runs), then again unchanged (every step from the cache).
        Console.Error.WriteLine("bench: Dockerfile builds, first and cached");
        var first = new Samples("templates: build of 9 steps, nothing cached (POST → done)");
        var cached = new Samples("templates: the same build again, every step cached (POST → done)");
        for (var i = 0; i < 3; i++)
        {
            first.Add(await BuildAsync(client, $"bench-app-{i}", Served($"{Guid.NewGuid():N}")));
        }

        var again = Served("");
        await BuildAsync(client, "bench-app-0", again); // fills the cache for this VERSION
        for (var i = 0; i < Math.Max(10, iterations / 5); i++)
        {
            cached.Add(await BuildAsync(client, "bench-app-0", again));
        }

        samples.AddRange([first, cached]);
        lines.Add($"| rebuild with every step cached, p50 (target ≤ 1 s) vs the first build | {cached.Median:F1} vs {first.Median:F1} ms | {cached.Median / first.Median:F2}× |");

        // A ready template: create → the first request to its server, against create → `echo hi`, interleaved.
        Console.Error.WriteLine("bench: a ready template's server against create → first command");
        var template = new Samples("templates: create from a ready template → first request to its server");
        var plain = new Samples("templates: create → `echo hi` (reference of the template)");
        var request = ExecRequestBody.FromArgv("wget", "-q", "-O", "-", "http://127.0.0.1:8000/built.txt");
        var echo = ExecRequestBody.FromArgv("echo", "hi");
        for (var i = 0; i < iterations / 2; i++)
        {
            template.Add(await CreateAndRunAsync(client, "bench-app-0", request));
            plain.Add(await CreateAndRunAsync(client, "bench-busybox", echo));
        }

        samples.AddRange([template, plain]);
        lines.Add($"| ready template → first request to its server, p50 (target ≤ 1.5×) vs create → first command | {template.Median:F1} vs {plain.Median:F1} ms | {template.Median / plain.Median:F2}× |");

        await client.SetPoolAsync("bench-app-0", 2);
        var pooled = new Samples("templates: the same from the template's warm pool (2)");
        for (var i = 0; i < Math.Max(10, iterations / 5); i++)
        {
            while ((await client.ListPoolsAsync()).Single(p => p.Image == "bench-app-0").Ready < 2)
            {
                await Task.Delay(20);
            }

            pooled.Add(await CreateAndRunAsync(client, "bench-app-0", request));
        }

        await client.SetPoolAsync("bench-app-0", 0);
        samples.Add(pooled);
        lines.Add($"| … from the template's warm pool, p50 vs create → first command | {pooled.Median:F1} vs {plain.Median:F1} ms | {pooled.Median / plain.Median:F2}× |");

        if (registry is null)
        {
            lines.Add("| pull with every layer stored | not measured: no local registry (bench/run starts one when docker-registry and skopeo are installed) | |");
            return (samples, lines);
        }

        // Pulls from the local registry: the first fetches the layer (8 MiB), the next ones find it stored.
        Console.Error.WriteLine("bench: pulls from a local registry");
        var reference = await PushAsync(registry);
        var fetched = new Samples("templates: pull of an 8 MiB image, layer fetched (POST → ready)");
        var present = new Samples("templates: pull of the same image, layer stored (POST → ready)");
        fetched.Add(await PullAsync(client, reference, "bench-pulled"));
        for (var i = 0; i < Math.Max(10, iterations / 5); i++)
        {
            present.Add(await PullAsync(client, reference, $"bench-pulled-{i}"));
            await client.DeleteImageAsync($"bench-pulled-{i}");
        }

        samples.AddRange([fetched, present]);
        lines.Add($"| pull with every layer stored, p50 (target ≤ 0.5 s) vs the first pull | {present.Median:F1} vs {fetched.Median:F1} ms | {present.Median / fetched.Median:F2}× |");
        return (samples, lines);
    }

    /// <summary>The bench image's build: its ARG VERSION, and httpd as its start command, ready once it serves.</summary>
    private static ImageBuildOptions Served(string version) => new()
    {
        BuildArgs = new Dictionary<string, string> { ["VERSION"] = version },
        StartCmd = "httpd -f -p 8000 -h /www",
        ReadyCmd = "wget -q -O /dev/null http://127.0.0.1:8000/index.html",
    };

    private static async Task<double> BuildAsync(CordonClient client, string name, ImageBuildOptions options)
    {
        using var context = new MemoryStream();
        await using (var writer = new TarWriter(context, TarEntryFormat.Pax, leaveOpen: true))
        {
            await AddAsync(writer, "Dockerfile", Encoding.UTF8.GetBytes(Dockerfile));
            await AddAsync(writer, "site/index.html", Encoding.UTF8.GetBytes("<h1>bench</h1>\n"));
            await AddAsync(writer, "site/data.bin", new byte[256 << 10]);
        }

        context.Position = 0;
        var stopwatch = Stopwatch.StartNew();
        var started = await client.BuildImageFromContextAsync(name, context, options);
        BuildEvent? last = null;
        await foreach (var e in client.FollowBuildAsync(started.Name))
        {
            last = e;
        }

        var elapsed = stopwatch.Elapsed.TotalMilliseconds;
        if (last?.Status != "ready")
        {
            throw new InvalidOperationException($"The bench build of {name} failed: {last?.Message}");
        }

        return elapsed;
    }

    private static async Task<double> CreateAndRunAsync(CordonClient client, string image, ExecRequestBody body)
    {
        var stopwatch = Stopwatch.StartNew();
        var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = image });
        var result = await client.ExecAsync(sandbox.Id, body);
        var elapsed = stopwatch.Elapsed.TotalMilliseconds;
        await client.DeleteSandboxAsync(sandbox.Id);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"The bench's first request in a sandbox of {image} failed: {result.Stderr}");
        }

        return elapsed;
    }

    private static async Task<double> PullAsync(CordonClient client, string reference, string name)
    {
        var stopwatch = Stopwatch.StartNew();
        var image = await client.PullImageAsync(new PullImageRequest { From = reference, Name = name });
        while (image.Status == "building")
        {
            await Task.Delay(2);
            image = await client.GetImageAsync(name);
        }

        if (image.Status != "ready")
        {
            throw new InvalidOperationException($"The bench pull of {reference} failed: {image.Message}");
        }

        return stopwatch.Elapsed.TotalMilliseconds;
    }

    /// <summary>Writes a one-layer OCI image layout (8 MiB of random data) and pushes it with skopeo.</summary>
    private static async Task<string> PushAsync(string registry)
    {
        var dir = Directory.CreateTempSubdirectory("cordon-bench-layout-").FullName;
        try
        {
            var blobs = Path.Combine(dir, "blobs", "sha256");
            Directory.CreateDirectory(blobs);
            var layerTar = new MemoryStream();
            await using (var writer = new TarWriter(layerTar, TarEntryFormat.Pax, leaveOpen: true))
            {
                await AddAsync(writer, "data.bin", RandomNumberGenerator.GetBytes(8 << 20));
            }

            var diffId = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(layerTar.ToArray()));
            var gz = new MemoryStream();
            await using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
            {
                layerTar.Position = 0;
                await layerTar.CopyToAsync(gzip);
            }

            var layer = await BlobAsync(blobs, gz.ToArray());
            var config = await BlobAsync(blobs, JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
            {
                ["architecture"] = "amd64",
                ["os"] = "linux",
                ["config"] = new Dictionary<string, object>(),
                ["rootfs"] = new Dictionary<string, object> { ["type"] = "layers", ["diff_ids"] = new[] { diffId } },
            }));
            var manifest = await BlobAsync(blobs, JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
                ["config"] = new { mediaType = "application/vnd.oci.image.config.v1+json", digest = config.Digest, size = config.Size },
                ["layers"] = new[] { new { mediaType = "application/vnd.oci.image.layer.v1.tar+gzip", digest = layer.Digest, size = layer.Size } },
            }));
            await File.WriteAllTextAsync(Path.Combine(dir, "oci-layout"), """{"imageLayoutVersion": "1.0.0"}""");
            await File.WriteAllBytesAsync(Path.Combine(dir, "index.json"), JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
            {
                ["schemaVersion"] = 2,
                ["manifests"] = new[] { new Dictionary<string, object> { ["mediaType"] = "application/vnd.oci.image.manifest.v1+json", ["digest"] = manifest.Digest, ["size"] = manifest.Size, ["annotations"] = new Dictionary<string, string> { ["org.opencontainers.image.ref.name"] = "bench" } } },
            }));
            var target = $"{registry}/bench/app:{Guid.NewGuid():N}";
            if (await ReferenceTools.RunAsync("/usr/bin/skopeo", "copy", "--quiet", "--dest-tls-verify=false", $"oci:{dir}:bench", $"docker://{target}") != 0)
            {
                throw new InvalidOperationException("skopeo could not push the bench image to the local registry.");
            }

            return target;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<(string Digest, long Size)> BlobAsync(string blobs, byte[] content)
    {
        var hex = Convert.ToHexStringLower(SHA256.HashData(content));
        await File.WriteAllBytesAsync(Path.Combine(blobs, hex), content);
        return ("sha256:" + hex, content.Length);
    }

    private static async Task AddAsync(TarWriter writer, string path, byte[] content)
        => await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, path) { Mode = (UnixFileMode)0b110_100_100, DataStream = new MemoryStream(content) });
}
