using Cordon.Runtime.Interop;

namespace Cordon.Runtime.Oci;

/// <summary>A sandbox's file system on the host: built step by step with an undo for each step, and removed
/// without reading the host's mount table where it can be.</summary>
public sealed partial class OciRuntime
{
    /// <summary>Builds the file system side of a sandbox in <paramref name="dir"/>: its id range, its writable
    /// layer, the image layers id-mapped for the range, and the overlay root. Each step registers its undo.</summary>
    /// <returns>The first host id of the sandbox's range.</returns>
    /// <param name="snapshots">Snapshots stacked above the image layers, oldest first, each seen through a mapping
    /// from the id range of the sandbox it was taken of to this one's.</param>
    private int BuildRoot(string dir, IReadOnlyList<string> layers, IReadOnlyList<string> snapshots, long diskMiB, UndoStack undo)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(dir)!, Modes.RootOnly);
        Directory.CreateDirectory(dir, Modes.RootOnly);
        undo.Push("state directory", () => Directory.Delete(dir, recursive: true));

        var range = _ranges.Allocate();
        undo.Push("id range", () => _ranges.Release(range));
        File.WriteAllText(Path.Combine(dir, "range"), range.ToString());
        var hostId = (int)_ranges.HostIdOf(range);

        // SECURITY: root's, group the sandbox's own host gid, 0710: the runtime enters the sandbox's user namespace
        // before it mounts the root, so the sandbox's ids must traverse (not list) this directory; no other host
        // user may enter it (its root's /tmp would be theirs to write, its config.json theirs to read).
        if (Syscalls.lchown(dir, 0, hostId) != 0)
        {
            throw new IOException($"chown {dir}: {Syscalls.LastError()}");
        }

        File.SetUnixFileMode(dir, Modes.OwnerAllGroupTraverse);

        // The writable layer: an ext4 image of the sandbox's disk size (see WritableLayer for why not tmpfs). Its undo
        // comes first: a creation that fails halfway through it may have mounted it.
        var layer = Path.Combine(dir, "layer");
        Directory.CreateDirectory(layer, Modes.RootOnly);
        undo.Push("writable layer", () => Unmount(layer));
        _layers.Create(Path.Combine(dir, "layer.img"), layer, diskMiB);
        var upper = Path.Combine(layer, "upper");
        var work = Path.Combine(layer, "work");
        CreateOwnedDirectory(upper, hostId);
        CreateOwnedDirectory(work, hostId);

        // The image layers, each seen through the sandbox's id mapping, read-only.
        using var userNamespace = _namespaces.LeaseRange(range);
        var lowers = new List<string>();
        for (var i = snapshots.Count - 1; i >= 0; i--)
        {
            var (snapshotUpper, snapshotBase) = MountSnapshot(snapshots[i]);
            var lower = Path.Combine(dir, $"snapshot{i}");
            Directory.CreateDirectory(lower);
            using (var shift = _namespaces.LeaseShift(snapshotBase, hostId))
            {
                IdmappedMount.Mount(snapshotUpper, lower, shift.Fd);
            }

            undo.Push($"snapshot layer {i}", () => Unmount(lower));
            lowers.Add(lower);
        }

        for (var i = layers.Count - 1; i >= 0; i--)
        {
            var lower = Path.Combine(dir, $"lower{i}");
            Directory.CreateDirectory(lower);
            IdmappedMount.Mount(layers[i], lower, userNamespace.Fd);
            undo.Push($"image layer {i}", () => Unmount(lower));
            lowers.Add(lower);
        }

        var rootfs = Path.Combine(dir, "rootfs");
        Directory.CreateDirectory(rootfs);
        Mount("overlay", rootfs, "overlay", Syscalls.MS_NOSUID,
            $"lowerdir={string.Join(':', lowers)},upperdir={upper},workdir={work},volatile");
        undo.Push("root overlay", () => Unmount(rootfs));

        // The overlay holds its own references to the layers: drop the extra mounts at once.
        foreach (var lower in lowers)
        {
            Syscalls.umount2(lower, Syscalls.MNT_DETACH);
        }

        return hostId;
    }

    /// <summary>Unmounts everything under a sandbox (or prepared root) directory, deepest first, removes it and
    /// releases its id range. Nothing there is a no-op.</summary>
    private void RemoveBundle(string dir)
    {
        if (!Directory.Exists(dir))
        {
            return;
        }

        // A root has two mounts of its own: the overlay and, below it, the writable layer. With those gone the
        // directory is flat (files and empty mount points), removed without reading the host's mount table,
        // which grows with every sandbox (it was ~30% of the server's time per destroy with 20 sandboxes).
        Syscalls.umount2(Path.Combine(dir, "rootfs"), Syscalls.MNT_DETACH);
        Syscalls.umount2(Path.Combine(dir, "layer"), Syscalls.MNT_DETACH);
        foreach (var volume in Directory.EnumerateDirectories(dir, "volume*"))
        {
            Syscalls.umount2(volume, Syscalls.MNT_DETACH);
        }

        Syscalls.umount2(Path.Combine(dir, "netns"), Syscalls.MNT_DETACH); // a stopped sandbox's kept network

        var range = ReadRange(dir);
        if (!TryRemoveFlat(dir))
        {
            // Something else is mounted or left below (a crash halfway through a build): never recurse into a
            // mount, so unmount everything below first.
            UnmountAll(dir);
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException ex)
            {
                throw new SandboxRuntimeException("The sandbox's files could not be removed; the server log says why.", $"removing {dir}: {ex.Message}", ex);
            }
        }

        if (int.TryParse(range, out var index))
        {
            _ranges.Release(index);
        }
    }

    /// <summary>Removes a directory whose subdirectories are all empty: files are unlinked, subdirectories
    /// removed with rmdir, which refuses a mount point or anything not empty.</summary>
    /// <returns>False, with part of it perhaps removed, when a subdirectory was not empty or was busy.</returns>
    private static bool TryRemoveFlat(string dir)
    {
        try
        {
            foreach (var entry in new DirectoryInfo(dir).EnumerateFileSystemInfos())
            {
                if (entry is DirectoryInfo && entry.LinkTarget is null)
                {
                    Directory.Delete(entry.FullName, recursive: false);
                }
                else
                {
                    entry.Delete();
                }
            }

            Directory.Delete(dir, recursive: false);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static void RemoveIfEmpty(string dir)
    {
        try
        {
            if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any())
            {
                Directory.Delete(dir);
            }
        }
        catch (IOException)
        {
        }
    }

    private static void UnmountAll(string dir)
    {
        if (!Directory.Exists(dir))
        {
            return;
        }

        foreach (var mount in Syscalls.MountsBelow(dir))
        {
            Syscalls.umount2(mount, Syscalls.MNT_DETACH);
        }
    }

    private static void CreateOwnedDirectory(string path, int hostId)
    {
        Directory.CreateDirectory(path);
        if (Syscalls.lchown(path, hostId, hostId) != 0)
        {
            throw new IOException($"chown {path}: {Syscalls.LastError()}");
        }
    }

    private static void Mount(string source, string target, string type, ulong flags, string data)
    {
        if (Syscalls.mount(source, target, type, flags, data) != 0)
        {
            throw new IOException($"mount {type} at {target} failed: {Syscalls.LastError()}");
        }
    }

    /// <summary>Unmounts if mounted; not being a mount point is fine (destroy is idempotent).</summary>
    private static void Unmount(string target)
    {
        if (Directory.Exists(target))
        {
            Syscalls.umount2(target, Syscalls.MNT_DETACH);
        }
    }
}
