using Cordon.Runtime.Interop;

namespace Cordon.Runtime.Oci;

/// <summary>Puts the sandbox directory on a file system that clones files without copying them (reflinks), so a
/// snapshot of a writable layer of any size is a freeze and a clone (~7 ms) instead of a copy (3.6 s per GiB).</summary>
/// <remarks>
/// On a host whose data directory is already on XFS (with reflink) or btrfs, that file system is used as it is.
/// Elsewhere (ext4, the common case; device-mapper thin pools need a kernel module many hosts lack) the directory
/// becomes the mount point of a sparse XFS image beside it (<c>{directory}.img</c>), mounted with <c>discard</c> so
/// space freed inside returns to the host. bench/snapshot-options measured the choice.
/// The switch happens only at a start with no sandbox in the directory: mounting over live sandboxes would hide
/// them; until then snapshots and forks are refused with a message saying so.
/// </remarks>
internal sealed class LayerPool(string directory, long sizeGiB)
{
    /// <summary>Files under the directory can be cloned: snapshots and forks work.</summary>
    public bool Reflinks { get; private set; }

    /// <summary>The sparse image holding the pool when the host's file system cannot clone.</summary>
    public string ImagePath => directory.TrimEnd('/') + ".img";

    /// <summary>Makes the directory reflink-capable if it can; returns why not (a warning), or null.</summary>
    /// <param name="hasSandboxes">Sandboxes live in the directory now (it is then left as it is).</param>
    public string? Prepare(bool hasSandboxes)
    {
        Directory.CreateDirectory(directory);
        if (FileClone.Supported(directory))
        {
            Reflinks = true;
            return null;
        }

        if (hasSandboxes)
        {
            return "Snapshots and forks are unavailable until the server starts with no sandboxes: the sandbox directory is not yet on a file system that clones files (it moves to one then).";
        }

        if (!File.Exists("/sbin/mkfs.xfs"))
        {
            return "Snapshots and forks need xfsprogs (apt-get install xfsprogs; ./cordon installs it), which formats the pool they clone in.";
        }

        // An earlier server's bind mount of the directory onto itself: replaced by the pool.
        if (Syscalls.IsMountPoint(directory))
        {
            Syscalls.umount2(directory, Syscalls.MNT_DETACH);
        }

        try
        {
            if (!File.Exists(ImagePath))
            {
                Format();
            }

            LoopDevice.Mount(ImagePath, directory, "xfs", Syscalls.MS_NOSUID | Syscalls.MS_NODEV, "discard");
        }
        catch (IOException ex)
        {
            return $"The reflink pool for snapshots could not be made ({ex.Message}); snapshots and forks are unavailable.";
        }

        Reflinks = FileClone.Supported(directory);
        return Reflinks ? null : "The reflink pool for snapshots does not clone files; snapshots and forks are unavailable.";
    }

    private void Format()
    {
        var parent = Path.GetDirectoryName(Path.GetFullPath(ImagePath))!;
        var size = sizeGiB > 0 ? sizeGiB << 30 : Math.Clamp(new DriveInfo(parent).TotalSize, 16L << 30, 4L << 40);
        var partial = ImagePath + ".partial";
        File.Delete(partial);
        using (var file = File.OpenHandle(partial, FileMode.CreateNew, FileAccess.Write, options: FileOptions.None))
        {
            RandomAccess.SetLength(file, size);
        }

        File.SetUnixFileMode(partial, Modes.RootReadWrite);
        var result = ExternalProgram.RunAsync("/sbin/mkfs.xfs", ["-q", "-K", "-m", "reflink=1", "-L", "cordon-pool", partial], CancellationToken.None)
            .GetAwaiter().GetResult();
        if (!result.Succeeded)
        {
            File.Delete(partial);
            throw new IOException($"mkfs.xfs failed: {result.Stderr.Trim()}");
        }

        File.Move(partial, ImagePath);
    }
}
