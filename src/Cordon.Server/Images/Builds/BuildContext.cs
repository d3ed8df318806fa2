using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;

namespace Cordon.Server.Images.Builds;

/// <summary>The files a build's COPY and ADD take from: the tarball the client sent, kept as one plain tar file in the
/// build's root-only scratch directory and read entry by entry.</summary>
/// <remarks>SECURITY: the context is the caller's. It is never unpacked on the host: its entries are read from the
/// tar stream and written into the build's sandbox through the agent, so a symlink or a <c>..</c> in it can point at
/// nothing of the host's. Names that would leave the context are refused when it arrives.</remarks>
public sealed class BuildContext
{
    private readonly string _tarPath;
    private readonly Dictionary<string, ContextEntry> _entries;

    private BuildContext(string tarPath, Dictionary<string, ContextEntry> entries)
    {
        _tarPath = tarPath;
        _entries = entries;
    }

    public IReadOnlyCollection<ContextEntry> Entries => _entries.Values;

    /// <summary>Stores the context tarball (plain, gzip or zstd) as <paramref name="tarPath"/> and reads its index.</summary>
    /// <exception cref="InvalidDataException">Not a tarball, larger than <paramref name="maxBytes"/> unpacked, or an
    /// entry whose name leaves the context.</exception>
    public static async Task<BuildContext> SaveAsync(Stream body, string tarPath, long maxBytes, CancellationToken cancellationToken)
    {
        await using var tar = await Runtime.Images.ArchiveStreams.OpenAsync(body, cancellationToken);

        if (!await BoundedCopy.ToNewFileAsync(tar, tarPath, maxBytes, cancellationToken))
        {
            throw new InvalidDataException($"the build context is larger than this server takes ({maxBytes >> 20} MiB unpacked): leave out what the build does not need (.dockerignore)");
        }

        var entries = new Dictionary<string, ContextEntry>(StringComparer.Ordinal);
        string? escaping = null;
        try
        {
            await using var stream = File.OpenRead(tarPath);
            await using var reader = new TarReader(stream);
            while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
            {
                if (entry.EntryType is TarEntryType.GlobalExtendedAttributes)
                {
                    continue;
                }

                if (GlobPattern.Clean(entry.Name) is not { } path)
                {
                    escaping = entry.Name;
                    break;
                }

                if (path.Length == 0)
                {
                    continue; // the root itself
                }

                entries[path] = new ContextEntry(path, entry.EntryType, (int)entry.Mode & 0xFFF, entry.Length,
                    entry.EntryType is TarEntryType.SymbolicLink or TarEntryType.HardLink ? entry.LinkName : null);
            }
        }
        catch (Exception ex) when (ex is FormatException or EndOfStreamException or InvalidDataException)
        {
            throw new InvalidDataException($"the build context is not a tar archive ({ex.Message})");
        }

        if (escaping is not null)
        {
            throw new InvalidDataException($"the build context has an entry that leaves it ('{Shorten(escaping)}')");
        }

        return new BuildContext(tarPath, entries);
    }

    /// <summary>A regular file's text (the Dockerfile), or null when there is no such file.</summary>
    public async Task<string?> ReadTextAsync(string path, int maxBytes, CancellationToken cancellationToken)
    {
        if (GlobPattern.Clean(path) is not { } clean || !_entries.TryGetValue(clean, out var entry) || !entry.IsFile)
        {
            return null;
        }

        if (entry.Size > maxBytes)
        {
            throw new InvalidDataException($"'{clean}' is larger than {maxBytes} bytes");
        }

        string? text = null;
        await ForEachAsync([entry], async (_, data) =>
        {
            using var reader = new StreamReader(data, Encoding.UTF8);
            text = await reader.ReadToEndAsync(cancellationToken);
        }, cancellationToken);
        return text;
    }

    /// <summary>The entries a COPY source names: the entry itself (and, for a directory, everything under it), or every
    /// entry a pattern matches.</summary>
    public IReadOnlyList<ContextEntry> Match(string source, out bool directory)
    {
        directory = false;
        var clean = GlobPattern.Clean(source);
        if (clean is null)
        {
            return [];
        }

        if (GlobPattern.HasWildcards(clean))
        {
            var regex = GlobPattern.ToRegex(clean);
            return [.. _entries.Values.Where(e => regex.IsMatch(e.Path)).OrderBy(e => e.Path, StringComparer.Ordinal)];
        }

        var prefix = clean.Length == 0 ? "" : clean + "/";
        var under = _entries.Values.Where(e => e.Path.StartsWith(prefix, StringComparison.Ordinal)).OrderBy(e => e.Path, StringComparer.Ordinal).ToList();
        if (clean.Length == 0 || under.Count > 0 || (_entries.TryGetValue(clean, out var self) && self.IsDirectory))
        {
            directory = true;
            return under;
        }

        return _entries.TryGetValue(clean, out var file) ? [file] : [];
    }

    /// <summary>Calls <paramref name="action"/> with each of <paramref name="wanted"/> and its data, in archive order.</summary>
    public async Task ForEachAsync(IReadOnlyCollection<ContextEntry> wanted, Func<ContextEntry, Stream, Task> action, CancellationToken cancellationToken)
    {
        var byPath = wanted.ToDictionary(e => e.Path, StringComparer.Ordinal);
        await using var stream = File.OpenRead(_tarPath);
        await using var reader = new TarReader(stream);
        while (byPath.Count > 0 && await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
        {
            if (GlobPattern.Clean(entry.Name) is { } path && byPath.Remove(path, out var match))
            {
                await action(match, entry.DataStream ?? Stream.Null);
            }
        }
    }

    /// <summary>What the entries hold, as a digest: paths, types, modes, link targets and contents. The step cache keys
    /// a COPY with it, so a changed file (or mode) misses.</summary>
    public async Task<string> DigestAsync(IReadOnlyCollection<ContextEntry> entries, CancellationToken cancellationToken)
    {
        var contents = new Dictionary<string, string>(StringComparer.Ordinal);
        await ForEachAsync([.. entries.Where(e => e.IsFile)], async (entry, data) =>
            contents[entry.Path] = Convert.ToHexStringLower(await SHA256.HashDataAsync(data, cancellationToken)), cancellationToken);
        var summary = new StringBuilder();
        foreach (var entry in entries.OrderBy(e => e.Path, StringComparer.Ordinal))
        {
            summary.Append(entry.Path).Append('\0').Append((int)entry.Type).Append('\0').Append(entry.Mode).Append('\0')
                .Append(entry.LinkTarget).Append('\0').Append(contents.GetValueOrDefault(entry.Path)).Append('\n');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(summary.ToString())));
    }

    private static string Shorten(string name) => name.Length > 100 ? name[..100] + "…" : name;
}
