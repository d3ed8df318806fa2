using System.Text.Json;

namespace Cordon.Runtime.Images;

/// <summary>Content-addressed, read-only image layers on the host: <c>{root}/layers/sha256-{hex}/</c>.</summary>
/// <remarks>A layer's address is the sha256 of its uncompressed tar stream (its OCI diff id), so the same
/// layer imported twice is stored once. Layers are owned by host root and only ever mounted read-only.</remarks>
public sealed class LayerStore(string root)
{
    public string Root { get; } = root;

    private string LayersDirectory => Path.Combine(Root, "layers");

    private string StagingDirectory => Path.Combine(Root, "staging");

    /// <summary>The directory of a layer.</summary>
    public string PathOf(string digest) => Path.Combine(LayersDirectory, digest.Replace(':', '-'));

    public bool Exists(string digest) => Directory.Exists(PathOf(digest));

    /// <summary>Every stored layer digest.</summary>
    public IEnumerable<string> List()
        => Directory.Exists(LayersDirectory)
            ? Directory.EnumerateDirectories(LayersDirectory).Select(d => Path.GetFileName(d).Replace("sha256-", "sha256:", StringComparison.Ordinal))
            : [];

    /// <summary>Removes a layer no image uses any more.</summary>
    public void Delete(string digest)
    {
        var path = PathOf(digest);
        File.Delete(path + ".size");
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }

    /// <summary>The unpacked size of a stored layer, when it was recorded (layers stored before sizes were kept have
    /// none).</summary>
    public long? SizeOf(string digest)
    {
        try
        {
            return Exists(digest) && long.TryParse(File.ReadAllText(PathOf(digest) + ".size"), out var size) ? size : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Adds a layer from an extracted copy elsewhere on the host by hard-linking its files (seconds for
    /// a 1.5 GiB root, instead of half a minute of extraction). Layers are immutable and only ever mounted
    /// read-only, so sharing inodes with the copy is safe.</summary>
    /// <returns>false when the copy is missing or on another file system (hard links cannot cross).</returns>
    public async Task<bool> TryLinkFromAsync(string digest, string source, CancellationToken cancellationToken)
    {
        if (Exists(digest))
        {
            return true;
        }

        if (!Directory.Exists(source))
        {
            return false;
        }

        var staging = Path.Combine(StagingDirectory, Guid.NewGuid().ToString("N"));
        if (!await LinkCopyAsync(source, staging, cancellationToken))
        {
            return false;
        }

        Commit(staging, digest, size: null);
        return true;
    }

    /// <summary>Hard-links a stored layer to <paramref name="target"/> (a host-wide cache); best effort.</summary>
    public async Task<bool> TryLinkToAsync(string digest, string target, CancellationToken cancellationToken)
    {
        if (Directory.Exists(target) || !Exists(digest))
        {
            return Directory.Exists(target);
        }

        var partial = target + ".partial";
        if (Directory.Exists(partial))
        {
            Directory.Delete(partial, recursive: true);
        }

        if (!await LinkCopyAsync(PathOf(digest), partial, cancellationToken))
        {
            return false;
        }

        Directory.Move(partial, target);
        return true;
    }

    /// <summary>Copies a tree as hard links (<c>cp -a --link</c>) to a new <paramref name="target"/>; on failure
    /// nothing of it is left.</summary>
    private static async Task<bool> LinkCopyAsync(string source, string target, CancellationToken cancellationToken)
    {
        // SECURITY: a layer's tree holds what its image holds, setuid binaries included: the directories above it
        // are root's alone, so no host user reaches them (sandboxes see layers through their own mounts).
        Directory.CreateDirectory(Path.GetDirectoryName(target)!, Modes.RootOnly);
        var result = await ExternalProgram.RunAsync("/bin/cp", ["-a", "--link", "--no-target-directory", source, target], cancellationToken);
        if (!result.Succeeded && Directory.Exists(target))
        {
            Directory.Delete(target, recursive: true);
        }

        return result.Succeeded;
    }

    /// <summary>Removes half-finished imports left by a crash.</summary>
    public void CleanStaging()
    {
        // SECURITY: layers hold what their images hold, setuid binaries included: the store is root's alone (also
        // a store that older versions left world-readable).
        Directory.CreateDirectory(Root, Modes.RootOnly);
        File.SetUnixFileMode(Root, Modes.RootOnly);

        if (Directory.Exists(StagingDirectory))
        {
            Directory.Delete(StagingDirectory, recursive: true);
        }
    }

    /// <summary>Imports an uploaded archive: a root file system tarball, or an OCI image layout packed as a tarball
    /// (recognised by its <c>oci-layout</c> file). Gzip is detected.</summary>
    /// <exception cref="InvalidDataException">The archive is neither, or is unsafe.</exception>
    public async Task<ImportedImage> ImportArchiveAsync(Stream archive, CancellationToken cancellationToken)
    {
        var staging = NewStagingDirectory();
        try
        {
            var (digest, size) = await LayerExtractor.ExtractAsync(archive, staging, cancellationToken);
            if (File.Exists(Path.Combine(staging, "oci-layout")) && File.Exists(Path.Combine(staging, "index.json")))
            {
                return await ImportOciLayoutAsync(staging, cancellationToken);
            }

            if (!Directory.EnumerateFileSystemEntries(staging).Any())
            {
                throw new InvalidDataException("The archive is empty: give a root file system tarball or an OCI image layout.");
            }

            Commit(staging, digest, size);
            return new ImportedImage([digest], new ImageConfig(), size);
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }

    /// <summary>Imports an OCI image layout directory: the linux/amd64 manifest's layers and config.</summary>
    public async Task<ImportedImage> ImportOciLayoutAsync(string layout, CancellationToken cancellationToken)
    {
        var manifest = OciLayout.FindManifest(layout);
        var layers = new List<string>();
        long size = 0;
        foreach (var blob in manifest.LayerBlobs)
        {
            await using var stream = File.OpenRead(blob);
            var staging = NewStagingDirectory();
            try
            {
                var (digest, layerSize) = await LayerExtractor.ExtractAsync(stream, staging, cancellationToken);
                Commit(staging, digest, layerSize);
                layers.Add(digest);
                size += layerSize;
            }
            finally
            {
                if (Directory.Exists(staging))
                {
                    Directory.Delete(staging, recursive: true);
                }
            }
        }

        return new ImportedImage(layers, manifest.Config, size);
    }

    private string NewStagingDirectory()
    {
        var dir = Path.Combine(StagingDirectory, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(StagingDirectory, Modes.RootOnly);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private void Commit(string staging, string digest, long? size)
    {
        Directory.CreateDirectory(LayersDirectory, Modes.RootOnly);
        var final = PathOf(digest);
        if (!Directory.Exists(final))
        {
            Directory.Move(staging, final);
        }

        // Content addressing makes copies identical: a layer stored already only gains its size if it had none.
        if (size is not null && !File.Exists(final + ".size"))
        {
            var partial = final + ".size." + Guid.NewGuid().ToString("N");
            File.WriteAllText(partial, size.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            File.Move(partial, final + ".size", overwrite: true);
        }
    }

    /// <summary>Reads an image config JSON (OCI or Docker) into an <see cref="ImageConfig"/>.</summary>
    public static ImageConfig ParseConfig(JsonElement config)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        if (config.TryGetProperty("config", out var c) && c.ValueKind == JsonValueKind.Object)
        {
            if (c.TryGetProperty("Env", out var e) && e.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in e.EnumerateArray())
                {
                    var text = item.GetString() ?? "";
                    var eq = text.IndexOf('=', StringComparison.Ordinal);
                    if (eq > 0)
                    {
                        env[text[..eq]] = text[(eq + 1)..];
                    }
                }
            }

            var user = c.TryGetProperty("User", out var u) && u.GetString() is { Length: > 0 } us ? us : "root";
            var dir = c.TryGetProperty("WorkingDir", out var w) && w.GetString() is { Length: > 0 } ws ? ws : "/";
            return new ImageConfig { Env = env, User = user, WorkingDir = dir };
        }

        return new ImageConfig();
    }
}
