using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using Cordon.Runtime.Interop;

namespace Cordon.Runtime.Images;

/// <summary>Unpacks a layer tarball (plain, gzip or zstd) into a directory, keeping owners, modes, setuid bits,
/// symlinks and hard links, and turning OCI whiteouts into overlayfs whiteouts.</summary>
/// <remarks>
/// SECURITY: the tarball is untrusted. No entry may land outside the target: names with <c>..</c> are
/// refused, and every parent directory is checked with lstat before use, so a symlink planted by an
/// earlier entry (<c>etc -> /</c>) cannot redirect a later one onto the host. Owners, modes and times are applied
/// to the inode found by openat2 from the layer's root with no symlink allowed anywhere on the way, through its
/// descriptor: a later entry that replaces a directory with a link (<c>a -> /host/path</c>) makes its metadata
/// land nowhere instead of on the host. Device nodes other than whiteouts are skipped (the sandbox's device
/// cgroup denies them anyway).
/// </remarks>
public static class LayerExtractor
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueWhiteout = ".wh..wh..opq";

    /// <summary>Extracts <paramref name="archive"/> into <paramref name="target"/> (which must exist).</summary>
    /// <returns>The sha256 of the uncompressed tar stream (the layer's diff id) and the bytes written.</returns>
    /// <exception cref="InvalidDataException">The archive is not a tarball or holds an entry that would escape.</exception>
    public static async Task<(string Digest, long Size)> ExtractAsync(Stream archive, string target, CancellationToken cancellationToken)
    {
        // gzip or zstd (OCI's tar+zstd layers, as registries serve them), or plain.
        var tar = await ArchiveStreams.OpenAsync(archive, cancellationToken);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var hashing = new HashingStream(tar, hash);
        long size = 0;
        var directories = new List<(string Relative, TarEntry Entry)>();
        var rootFd = Syscalls.OpenPathNoFollow(target);
        if (rootFd < 0)
        {
            throw new IOException($"Cannot open {target}: {Syscalls.LastError()}");
        }

        try
        {
            await using var reader = new TarReader(hashing, leaveOpen: true);
            TarEntry? entry;
            while ((entry = await reader.GetNextEntryAsync(copyData: false, cancellationToken)) is not null)
            {
                size += await ExtractEntryAsync(entry, target, rootFd, directories, cancellationToken);
            }

            // Drain the rest (tar padding) so the digest covers the whole stream.
            await hashing.CopyToAsync(Stream.Null, cancellationToken);

            // Directory modes and times last: writing children would change them.
            foreach (var (relative, directory) in directories)
            {
                ApplyMetadata(rootFd, relative, directory);
            }
        }
        catch (Exception ex) when (ex is FormatException or EndOfStreamException or InvalidOperationException)
        {
            throw new InvalidDataException($"The archive is not a valid tarball: {ex.Message}", ex);
        }
        finally
        {
            Syscalls.close(rootFd);
        }

        return ("sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset()), size);
    }

    private static async Task<long> ExtractEntryAsync(TarEntry entry, string root, int rootFd, List<(string, TarEntry)> directories, CancellationToken cancellationToken)
    {
        var relative = NormalizeName(entry.Name);
        if (relative is null)
        {
            return 0; // the root itself, or a global header
        }

        var name = Path.GetFileName(relative);
        var parentRelative = Path.GetDirectoryName(relative) ?? "";
        var parent = EnsureParent(root, parentRelative);

        if (name == OpaqueWhiteout)
        {
            SetOpaque(parent);
            return 0;
        }

        if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            var hidden = Path.Combine(parent, name[WhiteoutPrefix.Length..]);
            RemoveExisting(hidden);
            if (Syscalls.mknod(hidden, Syscalls.S_IFCHR, 0) != 0)
            {
                throw new IOException($"Cannot create whiteout {hidden}: {Syscalls.LastError()}");
            }

            return 0;
        }

        var path = Path.Combine(parent, name);
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                if (!IsRealDirectory(path))
                {
                    RemoveExisting(path);
                    Directory.CreateDirectory(path);
                }

                directories.Add((relative, entry));
                return 0;

            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                RemoveExisting(path);
                long written = 0;
                await using (var file = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 0 }))
                {
                    if (entry.DataStream is not null)
                    {
                        await entry.DataStream.CopyToAsync(file, cancellationToken);
                        written = file.Length;
                    }
                }

                ApplyMetadata(rootFd, relative, entry);
                return written;

            case TarEntryType.SymbolicLink:
                RemoveExisting(path);
                File.CreateSymbolicLink(path, entry.LinkName);
                Syscalls.lchown(path, entry is PosixTarEntry p ? p.Uid : 0, entry is PosixTarEntry q ? q.Gid : 0);
                return 0;

            case TarEntryType.HardLink:
                var linkRelative = NormalizeName(entry.LinkName)
                    ?? throw new InvalidDataException($"The hard link '{entry.Name}' points at the archive root.");
                var linkTarget = Path.Combine(EnsureParent(root, Path.GetDirectoryName(linkRelative) ?? "", create: false), Path.GetFileName(linkRelative));
                RemoveExisting(path);
                if (Syscalls.link(linkTarget, path) != 0)
                {
                    throw new InvalidDataException($"The hard link '{entry.Name}' points at '{entry.LinkName}', which is not in the archive before it.");
                }

                return 0;

            case TarEntryType.Fifo:
                RemoveExisting(path);
                Syscalls.mknod(path, 0x1000 | (uint)entry.Mode, 0);
                ApplyMetadata(rootFd, relative, entry);
                return 0;

            default:
                return 0; // devices and vendor extensions: not needed in a sandbox image
        }
    }

    /// <summary>Strips <c>./</c> and leading slashes; refuses <c>..</c>. Null for the archive root.</summary>
    private static string? NormalizeName(string name)
    {
        var parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToList();
        if (parts.Contains(".."))
        {
            throw new InvalidDataException($"The archive entry '{name}' contains '..'; refusing an archive that writes outside its root.");
        }

        return parts.Count == 0 ? null : string.Join('/', parts);
    }

    /// <summary>Walks from the root to the parent without following any symlink, creating missing directories.</summary>
    private static string EnsureParent(string root, string relative, bool create = true)
    {
        var current = root;
        foreach (var part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            if (Syscalls.lstat(current, out var st) == 0)
            {
                if ((st.Mode & Syscalls.S_IFMT) != 0x4000)
                {
                    throw new InvalidDataException($"The archive writes through '{part}', which is not a directory (a symlink cannot redirect extraction).");
                }
            }
            else if (create)
            {
                Directory.CreateDirectory(current);
            }
            else
            {
                throw new InvalidDataException($"The archive refers to a missing directory '{relative}'.");
            }
        }

        return current;
    }

    private static bool IsRealDirectory(string path)
        => Syscalls.lstat(path, out var st) == 0 && (st.Mode & Syscalls.S_IFMT) == 0x4000;

    private static void RemoveExisting(string path)
    {
        if (Syscalls.lstat(path, out var st) != 0)
        {
            return;
        }

        if ((st.Mode & Syscalls.S_IFMT) == 0x4000)
        {
            Directory.Delete(path, recursive: true);
        }
        else
        {
            File.Delete(path);
        }
    }

    private static void SetOpaque(string directory)
    {
        if (Syscalls.SetXattr(directory, "trusted.overlay.opaque", "y"u8) != 0)
        {
            throw new IOException($"Cannot mark {directory} opaque: {Syscalls.LastError()}");
        }
    }

    /// <summary>Applies an entry's owner, mode and time to what is at <paramref name="relative"/> below the root, found
    /// without following any symlink; when a link is in the way (a later entry replaced the path), nothing is done.</summary>
    private static void ApplyMetadata(int rootFd, string relative, TarEntry entry)
    {
        var fd = Syscalls.OpenBeneath(rootFd, relative);
        if (fd < 0)
        {
            return;
        }

        try
        {
            var uid = entry is PosixTarEntry posix ? posix.Uid : entry.Uid;
            var gid = entry is PosixTarEntry posix2 ? posix2.Gid : entry.Gid;
            Syscalls.SetMetadata(fd, uid, gid, (uint)entry.Mode & 0xFFF, entry.ModificationTime.ToUnixTimeSeconds());
        }
        finally
        {
            Syscalls.close(fd);
        }
    }
}
