using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Images.Builds;

/// <summary>Files uploaded for builds by content hash (E2B's Template SDK uploads each COPY's files once, as a tar
/// archive named by a hash of them): kept in a root-only directory of the data directory so a rebuild sends nothing.</summary>
/// <remarks>SECURITY: the hash is the client's claim, never checked against the content; so each key has uploads of
/// its own, and no key's build ever takes files another key uploaded under the same hash.</remarks>
public sealed partial class TemplateFiles(IOptions<CordonOptions> options)
{
    private string Directory => Path.Combine(options.Value.DataDir, "template-files");

    public static bool IsHash(string hash) => HashRegex().IsMatch(hash);

    /// <summary>Whether the key has uploaded files of that hash; one asked for counts as used now (it is kept).</summary>
    public bool Has(string owner, string hash)
    {
        if (!IsHash(hash) || !File.Exists(PathOf(owner, hash)))
        {
            return false;
        }

        File.SetLastWriteTimeUtc(PathOf(owner, hash), DateTime.UtcNow);
        return true;
    }

    /// <summary>Stores an upload (at most <see cref="CordonOptions.MaxUploadBytes"/>); it replaces another of the same
    /// hash only once complete.</summary>
    /// <exception cref="InvalidDataException">Larger than allowed.</exception>
    public async Task SaveAsync(string owner, string hash, Stream content, CancellationToken cancellationToken)
    {
        if (!IsHash(hash))
        {
            throw new ArgumentException("not a files hash", nameof(hash));
        }

        System.IO.Directory.CreateDirectory(Directory, Runtime.Modes.RootOnly);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(PathOf(owner, hash))!, Runtime.Modes.RootOnly);
        var partial = PathOf(owner, hash) + "." + Guid.NewGuid().ToString("N") + ".part";
        try
        {
            if (!await BoundedCopy.ToNewFileAsync(content, partial, options.Value.MaxUploadBytes, cancellationToken))
            {
                throw new InvalidDataException($"the upload is larger than this server takes ({options.Value.MaxUploadBytes >> 20} MiB, Cordon:MaxUploadBytes)");
            }

            File.Move(partial, PathOf(owner, hash), overwrite: true);
            Trim(owner);
        }
        finally
        {
            File.Delete(partial);
        }
    }

    /// <summary>A key keeps at most <see cref="CordonOptions.MaxUploadBytes"/> of uploads (what one build may take in
    /// all): the least recently used go first.</summary>
    private void Trim(string owner)
    {
        long kept = 0;
        var directory = new DirectoryInfo(Path.GetDirectoryName(PathOf(owner, new string('0', 64)))!);
        foreach (var file in directory.EnumerateFiles("*.tar").OrderByDescending(f => f.LastWriteTimeUtc))
        {
            kept += file.Length;
            if (kept > options.Value.MaxUploadBytes)
            {
                file.Delete();
            }
        }
    }

    /// <summary>The upload, or null when there is none of that hash.</summary>
    public Stream? Open(string owner, string hash) => Has(owner, hash) ? File.OpenRead(PathOf(owner, hash)) : null;

    /// <summary>Writes a build context: the Dockerfile as <paramref name="dockerfileName"/>, and each upload's
    /// entries under a directory named by its hash (so the COPY of each upload names <c>{hash}/{source}</c>).</summary>
    /// <returns>The context, in a file of its own that is removed when the stream is closed.</returns>
    /// <exception cref="InvalidDataException">An upload is missing or not a tar archive.</exception>
    public async Task<Stream> ComposeContextAsync(string owner, string dockerfileName, string dockerfile, IEnumerable<string> hashes, CancellationToken cancellationToken)
    {
        System.IO.Directory.CreateDirectory(Directory, Runtime.Modes.RootOnly);
        var output = new FileStream(Path.Combine(Directory, $"context-{Guid.NewGuid():N}.tar"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.Asynchronous | FileOptions.DeleteOnClose);
        try
        {
            await WriteContextAsync(output, owner, dockerfileName, dockerfile, hashes, cancellationToken);
            output.Position = 0;
            return output;
        }
        catch
        {
            await output.DisposeAsync();
            throw;
        }
    }

    private async Task WriteContextAsync(Stream output, string owner, string dockerfileName, string dockerfile, IEnumerable<string> hashes, CancellationToken cancellationToken)
    {
        await using var writer = new System.Formats.Tar.TarWriter(output, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true);
        await writer.WriteEntryAsync(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, dockerfileName)
        {
            DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(dockerfile)),
            Mode = (UnixFileMode)0b110_100_100,
        }, cancellationToken);
        foreach (var hash in hashes.Distinct(StringComparer.Ordinal))
        {
            await using var upload = Open(owner, hash) ?? throw new InvalidDataException($"the files of hash {hash} were never uploaded");
            await using var tar = await Runtime.Images.ArchiveStreams.OpenAsync(upload, cancellationToken);
            try
            {
                await using var reader = new System.Formats.Tar.TarReader(tar);
                while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
                {
                    if (entry.EntryType is System.Formats.Tar.TarEntryType.GlobalExtendedAttributes)
                    {
                        continue;
                    }

                    var copy = new System.Formats.Tar.PaxTarEntry(entry.EntryType, hash + "/" + entry.Name.TrimStart('/'))
                    {
                        Mode = entry.Mode,
                        ModificationTime = entry.ModificationTime,
                    };
                    if (entry.DataStream is { } data)
                    {
                        copy.DataStream = data;
                    }

                    if (entry.EntryType is System.Formats.Tar.TarEntryType.SymbolicLink or System.Formats.Tar.TarEntryType.HardLink)
                    {
                        copy.LinkName = entry.EntryType == System.Formats.Tar.TarEntryType.HardLink ? hash + "/" + entry.LinkName.TrimStart('/') : entry.LinkName;
                    }

                    await writer.WriteEntryAsync(copy, cancellationToken);
                }
            }
            catch (Exception ex) when (ex is FormatException or EndOfStreamException)
            {
                throw new InvalidDataException($"the files of hash {hash} are not a tar archive ({ex.Message})");
            }
        }
    }

    /// <summary>An upload's file: in a directory of the key's (named by a digest of its id, which is not a path).</summary>
    private string PathOf(string owner, string hash)
        => Path.Combine(Directory, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(owner)))[..32], hash + ".tar");

    [GeneratedRegex("^[a-f0-9]{64}$")]
    private static partial Regex HashRegex();
}
