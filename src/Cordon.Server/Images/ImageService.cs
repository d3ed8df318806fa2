using System.Text.RegularExpressions;
using Cordon.Protocol.Api;
using Cordon.Runtime.Images;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Images;

/// <summary>The images sandboxes start from: names and configs in SQLite, layers in the content-addressed
/// <see cref="LayerStore"/>, and the default image built from Debian packages on first use.</summary>
public sealed partial class ImageService
{
    private readonly StateStore _store;
    private readonly Secrets.SecretService _secrets;
    private readonly CordonOptions _options;
    private readonly ILogger<ImageService> _logger;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly RegistryPuller _puller = new();

    // The default image's build takes minutes: it has its own lock so imports never wait for it.
    private readonly SemaphoreSlim _defaultLock = new(1, 1);

    public ImageService(StateStore store, Secrets.SecretService secrets, IOptions<CordonOptions> options, ILogger<ImageService> logger)
    {
        _store = store;
        _secrets = secrets;
        _options = options.Value;
        _logger = logger;
        Layers = new LayerStore(Path.Combine(_options.DataDir, "images"));
        Layers.CleanStaging();

        // An import, pull or build interrupted by a crash never finished: forget it, and remove what a pull left (its
        // scratch directory may hold a caller's registry credentials).
        foreach (var image in _store.LoadImages().Where(i => i.Status == ImageStates.Building))
        {
            _store.DeleteImage(image.Name);
        }

        // The same for builds (their contexts are callers' files) and for E2B build contexts being composed.
        foreach (var scratch in new[] { PullsDirectory, Path.Combine(_options.DataDir, "builds") }.Where(Directory.Exists))
        {
            Directory.Delete(scratch, recursive: true);
        }

        var templateFiles = Path.Combine(_options.DataDir, "template-files");
        foreach (var partial in Directory.Exists(templateFiles) ? Directory.EnumerateFiles(templateFiles, "*", SearchOption.AllDirectories).Where(f => f.EndsWith(".part", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith("context-", StringComparison.Ordinal)) : [])
        {
            File.Delete(partial);
        }
    }

    public LayerStore Layers { get; }

    /// <summary>Pulls in progress, one root-only scratch directory each; per server (the cache is shared by every
    /// server on the host, and a starting server clears this directory).</summary>
    private string PullsDirectory => Path.Combine(_options.DataDir, "pulls");

    public IReadOnlyList<ImageInfo> List() => _store.LoadImages();

    /// <summary>The images <paramref name="caller"/> can use: for an admin key every image (a tenant's under its
    /// stored name, <c>{key}/{name}</c>); for a tenant key the server's images and its own, under their own names.</summary>
    public IReadOnlyList<ImageInfo> List(CallerIdentity caller)
    {
        if (caller.Admin)
        {
            return List();
        }

        // Its own first: one of its images hides the server's of the same name, as names resolve.
        var all = List();
        var own = all.Where(i => IsOwnedBy(i.Name, caller)).Select(i => View(caller, i)).ToList();
        var names = own.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        return [.. own, .. all.Where(i => IsShared(i.Name) && !names.Contains(i.Name))];
    }

    /// <summary>An image by its stored name (the server's own lookups: a sandbox's or a snapshot's image).</summary>
    public ImageInfo? Find(string name) => _store.LoadImage(name);

    /// <summary>The image <paramref name="name"/> means for <paramref name="caller"/>: a tenant's own image of that name,
    /// else the server's; another tenant's is never found. Its <c>Name</c> is the stored name.</summary>
    public ImageInfo? Find(CallerIdentity caller, string name)
    {
        if (caller.Admin)
        {
            return Find(name);
        }

        return name.Contains('/') ? null : Find(StoredName(caller, name)) ?? Find(name);
    }

    /// <summary>The name an image <paramref name="caller"/> makes is stored under: a tenant's images live in a
    /// namespace of their own (<c>{key}/{name}</c>; no name a caller gives contains '/'), the server's (an admin's) are
    /// shared by every key.</summary>
    public static string StoredName(CallerIdentity caller, string name) => caller.Admin ? name : $"{caller.KeyId}/{name}";

    /// <summary>The name a caller knows an image by: a tenant's own without its namespace.</summary>
    public static ImageInfo View(CallerIdentity caller, ImageInfo image)
        => !caller.Admin && IsOwnedBy(image.Name, caller) ? image with { Name = LocalName(image.Name) } : image;

    /// <summary>The part of a stored name after the tenant's namespace.</summary>
    public static string LocalName(string stored) => stored.Contains('/') ? stored[(stored.IndexOf('/') + 1)..] : stored;

    private static bool IsShared(string stored) => !stored.Contains('/');

    private static bool IsOwnedBy(string stored, CallerIdentity caller) => stored.StartsWith(caller.KeyId + "/", StringComparison.Ordinal);

    /// <summary>The image a sandbox of <paramref name="caller"/> can start from now (see <see cref="Find(CallerIdentity, string)"/>).</summary>
    /// <exception cref="CordonException">Unknown (or another tenant's), still building, or failed.</exception>
    public ImageInfo Resolve(CallerIdentity caller, string name)
        => Find(caller, name) is { } image ? Resolve(image.Name)
            : !caller.Admin && name.Contains('/') ? throw new CordonException(ErrorCode.ImageNotFound, $"The image '{name}' does not exist.") { Subject = name }
            : Resolve(name); // not found, or the default image not built yet: its own message

    /// <summary>The image a sandbox can start from now.</summary>
    /// <exception cref="CordonException">Unknown, still building, or failed.</exception>
    public ImageInfo Resolve(string name)
    {
        var image = Find(name);
        if (image is null)
        {
            if (name == _options.DefaultImage)
            {
                throw new CordonException(ErrorCode.ImageNotReady, "The default image has not been built yet: run 'cordon image build default' (or start the server with Cordon:PrepareDefaultImage=true) and retry.") { Subject = name, RetryAfterSeconds = 30 };
            }

            throw new CordonException(ErrorCode.ImageNotFound, $"The image '{name}' does not exist.") { Subject = name };
        }

        return image.Status switch
        {
            ImageStates.Ready => image,
            ImageStates.Building => throw new CordonException(ErrorCode.ImageNotReady, $"The image '{name}' is still being prepared ({image.Message}); retry in a minute.") { Subject = name, RetryAfterSeconds = 30 },
            _ when name == _options.DefaultImage => throw new CordonException(ErrorCode.ImageFailed, $"The image '{name}' failed to build: {image.Message}. Rebuild it with 'cordon image build {name}'.") { Subject = name },
            _ => throw new CordonException(ErrorCode.ImageFailed, $"The image '{name}' is not usable: {image.Message}") { Subject = name },
        };
    }

    /// <summary>Validates an image name: lowercase letters, digits, '.', '_', '-' and ':', up to 128 characters.</summary>
    /// <param name="storedForm">Also take a tenant's image by its stored name, <c>{keyId}/{name}</c> (for admin keys).</param>
    public static void ValidateName(string? name, bool storedForm = false)
    {
        if (storedForm && name is not null && name.IndexOf('/') is > 0 and var slash && KeyIdRegex().IsMatch(name[..slash]))
        {
            name = name[(slash + 1)..];
        }

        if (string.IsNullOrEmpty(name) || !NameRegex().IsMatch(name))
        {
            throw CordonException.Invalid($"The image name '{name}' is not valid: use 1-128 lowercase letters, digits, '.', '_', '-' or ':', starting with a letter or digit.");
        }
    }

    /// <summary>Imports a root file system tarball or an OCI image layout tarball under <paramref name="name"/> (in
    /// the caller's namespace).</summary>
    public async Task<ImageInfo> ImportAsync(CallerIdentity caller, string name, Stream archive, CancellationToken cancellationToken)
    {
        ValidateName(name);
        name = StoredName(caller, name);
        await ReserveAsync(caller, name, "importing", replace: true, cancellationToken);
        try
        {
            var imported = await Layers.ImportArchiveAsync(archive, cancellationToken);
            var image = ToInfo(name, imported);
            _store.SaveImage(image);
            LogImported(name, image.Digest ?? "", imported.SizeBytes);
            return image;
        }
        catch (InvalidDataException ex)
        {
            _store.DeleteImage(name);
            throw CordonException.Invalid($"The image archive was refused: {ex.Message}");
        }
        catch
        {
            _store.DeleteImage(name);
            throw;
        }
    }

    /// <summary>Marks <paramref name="name"/> as being made (<c>building</c>), refused for the default image's name
    /// and for a name being made already.</summary>
    /// <param name="replace">A ready image of that name may be replaced (an import); a pull is refused instead, so
    /// that one that fails never costs a working image.</param>
    private async Task<ImageInfo> ReserveAsync(CallerIdentity caller, string name, string message, bool replace, CancellationToken cancellationToken)
    {
        if (LocalName(name) == _options.DefaultImage)
        {
            throw new CordonException(ErrorCode.ImageReserved, $"'{LocalName(name)}' is the name of the default image, which Cordon builds itself: use another name.");
        }

        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            switch (Find(name))
            {
                case { Status: ImageStates.Building }:
                    throw new CordonException(ErrorCode.ImageBusy, $"The image '{name}' is being imported or pulled already: wait for it to finish.");
                case { Status: ImageStates.Ready } when !replace:
                    throw new CordonException(ErrorCode.ImageBusy, $"The image '{LocalName(name)}' exists: pull under another name (\"name\"), or delete it first (DELETE /v1/images/{LocalName(name)}).");
                case null:
                    RequireRoomFor(caller);
                    break;
            }

            var image = new ImageInfo { Name = name, Status = ImageStates.Building, CreatedAt = DateTimeOffset.UtcNow, Message = message };
            _store.SaveImage(image);
            return image;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Checks a pull and reserves its name; the pull itself is <see cref="PullAsync"/>, in the background.</summary>
    /// <returns>The image, what to pull, and the credentials to pull with (a secret's value taken in).</returns>
    public async Task<(ImageInfo Image, ImageReference Reference, RegistryCredentials? Credentials)> StartPullAsync(CallerIdentity caller, PullImageRequest request, CancellationToken cancellationToken)
    {
        ImageReference reference;
        try
        {
            reference = ImageReference.Parse(request.From);
        }
        catch (FormatException ex)
        {
            throw CordonException.Invalid(ex.Message);
        }

        var credentials = request.Credentials;
        if (credentials is { PasswordSecret: { } secretName })
        {
            if (credentials.Password is not null)
            {
                throw CordonException.Invalid("credentials take a password or a passwordSecret, not both.");
            }

            var secret = _secrets.Get(caller, secretName);
            if (!SecretAllows(secret, reference.Registry))
            {
                throw CordonException.Invalid($"The secret '{secret.Name}' may not be sent to {reference.Registry}: add the registry's host to its hosts (PUT /v1/secrets/{secret.Name}), then pull again.");
            }

            credentials = credentials with { Password = secret.Value, PasswordSecret = null };
        }

        if (credentials is not null
            && (string.IsNullOrEmpty(credentials.Username) || string.IsNullOrEmpty(credentials.Password) // JSON may send null
                || credentials.Username.Contains(':') || credentials.Username.Length > 256 || credentials.Password.Length > 16384
                || credentials.Username.Any(char.IsControl) || credentials.Password.Any(char.IsControl)))
        {
            throw CordonException.Invalid("credentials need a username (without ':') and a password (or passwordSecret), each on one line (at most 256 and 16,384 characters).");
        }

        if (!_puller.Available)
        {
            throw new CordonException(ErrorCode.RuntimeFailed, "Pulling from registries needs skopeo on the host (apt-get install skopeo; ./cordon installs it).");
        }

        var name = request.Name ?? reference.DefaultName;
        ValidateName(name);
        var image = await ReserveAsync(caller, StoredName(caller, name), $"pulling {reference}", replace: false, cancellationToken);
        return (image, reference, credentials);
    }

    /// <summary>A secret may go to a registry when one of its hosts names the registry's host name (any port), as the
    /// egress proxy decides where a secret may go; a registry named by its address never gets one.</summary>
    private static bool SecretAllows(Secrets.SecretRecord secret, string registry)
    {
        var colon = registry.LastIndexOf(':');
        var host = (colon > 0 && !registry.EndsWith(']') ? registry[..colon] : registry).ToLowerInvariant();
        return secret.AllowsHost(host);
    }

    /// <summary>Pulls a reserved image: skopeo copies it (digests verified) into an OCI archive in the data directory, which is
    /// imported as an upload would be; the image is then <c>ready</c>, or <c>failed</c> with the registry's reason.</summary>
    public async Task PullAsync(CallerIdentity caller, string name, ImageReference reference, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        var scratch = Path.Combine(PullsDirectory, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.GetDirectoryName(scratch)!, Runtime.Modes.RootOnly);
        Directory.CreateDirectory(scratch, Runtime.Modes.RootOnly);
        try
        {
            var login = credentials is null ? ((string, string)?)null : (credentials.Username, credentials.Password!);
            var plainHttp = _options.InsecureRegistries.Contains(reference.Registry, StringComparer.OrdinalIgnoreCase);

            // The config first (the registry's manifest and config, no layer): when every layer it names is stored
            // already, the image is made from them and nothing more is fetched.
            if (Present(await _puller.InspectConfigAsync(reference, scratch, login, plainHttp, cancellationToken), VisibleLayers(caller)) is { } present)
            {
                var known = ToInfo(name, present);
                _store.SaveImage(known);
                LogImported(name, known.Digest ?? "", present.SizeBytes);
                return;
            }

            // Everything skopeo writes stays in the scratch directory (its TMPDIR too): what arrived so far is its
            // size, reported as the pull's progress, and a registry that sends more than the server takes is cut off
            // then, not after (the archive is the blobs once more, hence twice the limit).
            var archive = Path.Combine(scratch, "image.tar");
            var blobs = 0;
            var tooLarge = false;
            using var copying = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var watch = WatchPullAsync(name, reference, scratch, () => blobs, () =>
            {
                tooLarge = true;
                copying.Cancel();
            }, copying.Token);
            try
            {
                await _puller.PullAsync(reference, archive, scratch, login, plainHttp,
                    line => SaveProgress(name, $"pulling {reference}: {line} ({++blobs} started)"), copying.Token);
            }
            catch (OperationCanceledException) when (tooLarge)
            {
            }
            finally
            {
                await copying.CancelAsync();
                await watch;
            }

            if (tooLarge || new FileInfo(archive).Length > _options.MaxUploadBytes)
            {
                throw new InvalidDataException($"the image is larger than this server takes ({_options.MaxUploadBytes >> 20} MiB, Cordon:MaxUploadBytes)");
            }

            SaveProgress(name, $"unpacking {reference}");
            ImportedImage imported;
            await using (var stream = File.OpenRead(archive))
            {
                imported = await Layers.ImportArchiveAsync(stream, cancellationToken);
            }

            var image = ToInfo(name, imported);
            _store.SaveImage(image);
            LogImported(name, image.Digest ?? "", imported.SizeBytes);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException)
        {
            LogPullFailed(name, reference.ToString(), ex.Message);
            _store.SaveImage(new ImageInfo
            {
                Name = name,
                Status = ImageStates.Failed,
                CreatedAt = DateTimeOffset.UtcNow,
                Message = $"Pulling {reference} failed: {(ex is InvalidDataException ? ex.Message : "the server could not store it (its log says why)")}. Check the reference and the credentials, then pull again.",
            });
        }
        catch
        {
            _store.DeleteImage(name); // cancelled (the server is stopping): nothing half-made stays
            throw;
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>Every half second while a pull copies: the bytes that arrived (the scratch directory's size) as the
    /// image's progress; <paramref name="overLimit"/> once they pass twice <see cref="CordonOptions.MaxUploadBytes"/>.</summary>
    private async Task WatchPullAsync(string name, ImageReference reference, string scratch, Func<int> blobs, Action overLimit, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                await Task.Delay(500, cancellationToken);
                var bytes = new DirectoryInfo(scratch).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f =>
                {
                    try
                    {
                        return f.Length;
                    }
                    catch (FileNotFoundException)
                    {
                        return 0; // removed meanwhile
                    }
                });
                SaveProgress(name, $"pulling {reference}: {bytes / (1024.0 * 1024.0):0.0} MiB received ({blobs()} blob(s) started)");
                if (bytes > 2 * _options.MaxUploadBytes)
                {
                    overLimit();
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or DirectoryNotFoundException or IOException)
        {
        }
    }

    /// <summary>The image a config describes when every layer it names (its <c>diff_ids</c>, the digests layers are
    /// stored under) is stored with its size; null when any is missing.</summary>
    /// <remarks>SECURITY: a layer counts as present only when it is a layer of an image the caller can already use
    /// (<paramref name="visible"/>): knowing a digest of another tenant's layer must not be enough to get it.</remarks>
    private ImportedImage? Present(string configJson, ISet<string> visible)
    {
        try
        {
            using var config = System.Text.Json.JsonDocument.Parse(configJson);
            if (!config.RootElement.TryGetProperty("rootfs", out var rootfs) || !rootfs.TryGetProperty("diff_ids", out var ids)
                || ids.ValueKind != System.Text.Json.JsonValueKind.Array || ids.GetArrayLength() == 0)
            {
                return null;
            }

            var layers = new List<string>();
            long size = 0;
            foreach (var id in ids.EnumerateArray())
            {
                if (id.GetString() is not { } digest || !DigestRegex().IsMatch(digest) || !visible.Contains(digest) || Layers.SizeOf(digest) is not { } layerSize)
                {
                    return null;
                }

                layers.Add(digest);
                size += layerSize;
            }

            return new ImportedImage(layers, LayerStore.ParseConfig(config.RootElement), size);
        }
        catch (System.Text.Json.JsonException)
        {
            return null; // the copy reads it again, and refuses it with its reason
        }
    }

    [GeneratedRegex("^sha256:[a-f0-9]{64}$")]
    private static partial Regex DigestRegex();

    /// <summary>The layers of the images the caller can use (an admin: every stored layer's image).</summary>
    private HashSet<string> VisibleLayers(CallerIdentity caller) => [.. List(caller).Where(i => i.Status == ImageStates.Ready).SelectMany(i => i.Layers)];

    private void SaveProgress(string name, string message)
    {
        if (Find(name) is { Status: ImageStates.Building } image)
        {
            _store.SaveImage(image with { Message = message });
        }
    }

    /// <summary>A tenant holds at most <see cref="CordonOptions.MaxImagesPerKey"/> images.</summary>
    private void RequireRoomFor(CallerIdentity caller)
    {
        if (!caller.Admin && List().Count(i => IsOwnedBy(i.Name, caller)) is var held && held >= _options.MaxImagesPerKey)
        {
            throw new CordonException(ErrorCode.QuotaExceeded, $"Your key holds {held} images, its most: delete ones you no longer need (DELETE /v1/images/{{name}}) and retry.");
        }
    }

    /// <summary>Whether the default image is ready, or can be made ready from the host cache in seconds.</summary>
    public bool DefaultImageIsQuick()
        => Find(_options.DefaultImage) is { Status: ImageStates.Ready }
           || new DefaultImageBuilder(Path.Combine(_options.CacheDir, "images"), _options.DebianMirror).IsCached;

    /// <summary>Builds (or imports from the host cache) the default image. Safe to call concurrently: the
    /// second caller waits for the first.</summary>
    public async Task<ImageInfo> PrepareDefaultAsync(bool rebuild, CancellationToken cancellationToken)
    {
        var name = _options.DefaultImage;
        await _defaultLock.WaitAsync(cancellationToken);
        try
        {
            if (!rebuild && Find(name) is { Status: ImageStates.Ready } ready && ready.Layers.All(Layers.Exists))
            {
                return ready;
            }

            var builder = new DefaultImageBuilder(Path.Combine(_options.CacheDir, "images"), _options.DebianMirror);
            var image = new ImageInfo { Name = name, Status = ImageStates.Building, CreatedAt = DateTimeOffset.UtcNow, Message = "starting" };
            _store.SaveImage(image);
            var lastSave = DateTimeOffset.MinValue;
            var progress = new Progress<string>(line =>
            {
                LogBuildProgress(line);
                if (DateTimeOffset.UtcNow - lastSave > TimeSpan.FromSeconds(1))
                {
                    lastSave = DateTimeOffset.UtcNow;
                    _store.SaveImage(image with { Message = line.Length > 200 ? line[..200] : line });
                }
            });
            try
            {
                if (rebuild && File.Exists(builder.CachedTarball))
                {
                    File.Delete(builder.CachedTarball);
                }

                var tarball = await builder.EnsureTarballAsync(progress, cancellationToken);
                var imported = await ImportCachedAsync(tarball, cancellationToken);
                var config = imported.Config with
                {
                    Env = new Dictionary<string, string>
                    {
                        ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        ["LANG"] = "C.UTF-8",
                        ["PYTHONUNBUFFERED"] = "1",
                        ["MPLBACKEND"] = "Agg",
                    },
                };
                var built = ToInfo(name, imported with { Config = config });
                _store.SaveImage(built);
                LogImported(name, built.Digest ?? "", imported.SizeBytes);
                return built;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _store.SaveImage(image with { Status = ImageStates.Failed, Message = ex.Message });
                LogBuildFailed(ex.Message);
                throw new CordonException(ErrorCode.ImageBuildFailed, $"Building the default image failed: {ex.Message}");
            }
        }
        finally
        {
            _defaultLock.Release();
        }
    }

    /// <summary>Brings a cached root file system tarball into this data directory's store: by hard links from the
    /// host-wide extracted copy when there is one, otherwise by extracting it (and then leaving such a copy
    /// for the next data directory).</summary>
    private async Task<ImportedImage> ImportCachedAsync(string tarball, CancellationToken cancellationToken)
    {
        var digestFile = tarball + ".layer";
        var extracted = (string digest) => Path.Combine(_options.CacheDir, "layers", digest.Replace(':', '-'));
        if (File.Exists(digestFile) && (await File.ReadAllTextAsync(digestFile, cancellationToken)).Trim() is { Length: > 0 } known
            && await Layers.TryLinkFromAsync(known, extracted(known), cancellationToken))
        {
            LogBuildProgress("linked the default image from the host cache");
            return new ImportedImage([known], new ImageConfig(), new FileInfo(tarball).Length);
        }

        LogBuildProgress("unpacking the default image into the image store");
        await using var stream = File.OpenRead(tarball);
        var imported = await Layers.ImportArchiveAsync(stream, cancellationToken);
        var digest = imported.Layers[0];
        if (await Layers.TryLinkToAsync(digest, extracted(digest), cancellationToken))
        {
            await File.WriteAllTextAsync(digestFile, digest, cancellationToken);
        }

        return imported;
    }

    /// <summary>The name a pull of <paramref name="reference"/> gives its image by default (<c>app:1.2</c>).</summary>
    /// <exception cref="CordonException">Not an image reference.</exception>
    public static string DefaultPullName(string reference)
    {
        try
        {
            return ImageReference.Parse(reference).DefaultName;
        }
        catch (FormatException ex)
        {
            throw CordonException.Invalid(ex.Message);
        }
    }

    /// <summary>Gives a ready image a second name (a tag) in the caller's namespace: the same layers, snapshots and
    /// configuration.</summary>
    public ImageInfo Tag(CallerIdentity caller, string source, string name)
    {
        ValidateName(name);
        var image = Find(caller, source) is { Status: ImageStates.Ready } ready ? ready
            : throw new CordonException(ErrorCode.ImageNotFound, $"No ready image '{source}' exists to tag.") { Subject = source };
        name = StoredName(caller, name);
        if (LocalName(name) == _options.DefaultImage)
        {
            throw new CordonException(ErrorCode.ImageReserved, $"'{LocalName(name)}' is the name of the default image, which Cordon builds itself: use another name.");
        }

        var tagged = image with { Name = name, CreatedAt = DateTimeOffset.UtcNow };
        _store.SaveImage(tagged);
        return tagged;
    }

    /// <summary>The snapshots built images stand on and the build cache holds (they are kept while referenced).</summary>
    public HashSet<string> ReferencedSnapshots()
    {
        var referenced = _store.BuildCacheSnapshots();
        foreach (var image in _store.LoadImages())
        {
            referenced.UnionWith(image.Snapshots);
        }

        return referenced;
    }

    /// <summary>Marks a build of <paramref name="name"/> as started: a new name shows as <c>building</c>; an image of
    /// that name stays usable (and unchanged) until the build replaces it.</summary>
    /// <returns>The image as it shows while the build runs.</returns>
    public async Task<ImageInfo> BeginBuildAsync(CallerIdentity caller, string name, CancellationToken cancellationToken)
    {
        if (LocalName(name) == _options.DefaultImage)
        {
            throw new CordonException(ErrorCode.ImageReserved, $"'{LocalName(name)}' is the name of the default image, which Cordon builds itself: use another name.");
        }

        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            if (Find(name) is { Status: ImageStates.Ready } ready)
            {
                return ready;
            }

            if (Find(name) is { Status: ImageStates.Building })
            {
                throw new CordonException(ErrorCode.ImageBusy, $"The image '{name}' is being imported, pulled or built already: wait for it to finish.");
            }

            RequireRoomFor(caller);
            var image = new ImageInfo { Name = name, Status = ImageStates.Building, CreatedAt = DateTimeOffset.UtcNow, Message = "building" };
            _store.SaveImage(image);
            return image;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Ends a build: its image replaces the old one of that name, or (failed) the name shows why — unless a
    /// ready image of that name existed before the build, which stays.</summary>
    public void EndBuild(string name, ImageInfo? built, string? failure)
    {
        if (built is not null)
        {
            _store.SaveImage(built);
            LogImported(name, built.Digest ?? "", built.SizeBytes);
        }
        else if (Find(name) is not { Status: ImageStates.Ready })
        {
            _store.SaveImage(new ImageInfo { Name = name, Status = ImageStates.Failed, CreatedAt = DateTimeOffset.UtcNow, Message = failure });
        }
    }

    /// <summary>Removes an image of the caller's (an admin's: any); its layers go once no image uses them. Refused
    /// while sandboxes use it.</summary>
    public void Delete(CallerIdentity caller, string name, IEnumerable<string> imagesInUse)
    {
        var image = Find(caller, name) ?? throw new CordonException(ErrorCode.ImageNotFound, $"The image '{name}' does not exist.") { Subject = name };
        if (!caller.Admin && !IsOwnedBy(image.Name, caller))
        {
            throw new CordonException(ErrorCode.AdminRequired, $"The image '{name}' is the server's, shared by every key: only an admin key deletes it.");
        }

        Delete(image.Name, imagesInUse);
    }

    private void Delete(string name, IEnumerable<string> imagesInUse)
    {
        var image = Find(name) ?? throw new CordonException(ErrorCode.ImageNotFound, $"The image '{name}' does not exist.") { Subject = name };
        if (imagesInUse.Contains(name))
        {
            throw new CordonException(ErrorCode.ImageInUse, $"Sandboxes, snapshots or build steps still start from the image '{name}': destroy those sandboxes, delete those snapshots, or empty the build cache (DELETE /v1/images/build-cache), then retry.");
        }

        _store.DeleteImage(name);
        var used = _store.LoadImages().SelectMany(i => i.Layers).ToHashSet();
        foreach (var layer in image.Layers.Where(l => !used.Contains(l)))
        {
            Layers.Delete(layer);
        }
    }

    public IReadOnlyList<string> LayerPaths(ImageInfo image) => [.. image.Layers.Select(Layers.PathOf)];

    private static ImageInfo ToInfo(string name, ImportedImage imported) => new()
    {
        Name = name,
        Status = ImageStates.Ready,
        Digest = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes(string.Join('\n', imported.Layers)))),
        Layers = imported.Layers,
        SizeBytes = imported.SizeBytes,
        CreatedAt = DateTimeOffset.UtcNow,
        Env = imported.Config.Env,
        User = imported.Config.User,
        WorkingDir = imported.Config.WorkingDir,
    };

    [GeneratedRegex("^[a-z0-9][a-z0-9._:-]{0,127}$")]
    private static partial Regex NameRegex();

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex KeyIdRegex();

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Pulling image {Name} from {Reference} failed: {Message}")]
    private partial void LogPullFailed(string name, string reference, string message);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Image {Name} ready: {Digest}, {Bytes} bytes")]
    private partial void LogImported(string name, string digest, long bytes);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "default image: {Line}")]
    private partial void LogBuildProgress(string line);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Error, Message = "Building the default image failed: {Message}")]
    private partial void LogBuildFailed(string message);
}
