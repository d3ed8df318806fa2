using Cordon.Runtime.Interop;

namespace Cordon.Runtime.Oci;

/// <summary>Volumes: named storage that outlives sandboxes.</summary>
/// <remarks>
/// Each is an ext4 image of its size (a hard limit: ENOSPC) in <c>.volumes/{volumeId}/volume.img</c>, mounted (nosuid,
/// nodev) at <c>.volumes/{volumeId}/mnt</c> in a directory only root may enter. Its files carry the ids sandboxes see
/// (0 is a sandbox's root); each sandbox that mounts it gets a writable id-mapped view in its bundle
/// (<c>volume{i}</c>) from 0… to its own range, bound at the path it asked for. Several sandboxes, each with its own
/// range, thus share one volume and see the same owners.
/// </remarks>
public sealed partial class OciRuntime
{
    private readonly Lock _volumeLock = new();

    private string VolumesDirectory => Path.Combine(_options.StateDirectory, ".volumes");

    public async ValueTask CreateVolumeAsync(string volumeId, long sizeMiB, CancellationToken cancellationToken)
    {
        var dir = Path.Combine(VolumesDirectory, volumeId);
        Directory.CreateDirectory(VolumesDirectory, Modes.RootOnly);
        Directory.CreateDirectory(dir, Modes.RootOnly);
        var image = Path.Combine(dir, "volume.img");
        try
        {
            using (var file = File.OpenHandle(image, FileMode.CreateNew, FileAccess.Write))
            {
                RandomAccess.SetLength(file, sizeMiB << 20);
            }

            File.SetUnixFileMode(image, Modes.RootReadWrite);
            var result = await ExternalProgram.RunAsync("/sbin/mkfs.ext4",
                ["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,nodiscard,root_owner=0:0", "-L", "cordon-volume", image], cancellationToken);
            if (!result.Succeeded)
            {
                throw new IOException($"mkfs.ext4 failed: {result.Stderr.Trim()}");
            }

            var mount = MountVolume(volumeId);

            // Everyone in a sandbox may write at its top (sticky, as /tmp): a sandbox's user need not be root.
            Directory.Delete(Path.Combine(mount, "lost+found"));
            Syscalls.chmod(mount, 0b1_111_111_111);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Unmount(Path.Combine(dir, "mnt"));
            Directory.Delete(dir, recursive: true);
            throw new SandboxRuntimeException("The volume could not be created; the server log says why.", ex.Message, ex);
        }
    }

    public ValueTask DeleteVolumeAsync(string volumeId, CancellationToken cancellationToken)
    {
        var dir = Path.Combine(VolumesDirectory, volumeId);
        lock (_volumeLock)
        {
            if (Directory.Exists(dir))
            {
                Unmount(Path.Combine(dir, "mnt"));
                if (!TryRemoveFlat(dir))
                {
                    throw new SandboxRuntimeException("The volume's files could not be removed; the server log says why.", $"{dir} is busy or not flat");
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    public IReadOnlyList<string> ListVolumes()
        => Directory.Exists(VolumesDirectory) ? [.. Directory.EnumerateDirectories(VolumesDirectory).Select(Path.GetFileName).OfType<string>()] : [];

    public VolumeFiles VolumeFiles(string volumeId) => new(MountVolume(volumeId));

    /// <summary>The volume's file system, mounted once (at first use after a start).</summary>
    private string MountVolume(string volumeId)
    {
        var dir = Path.Combine(VolumesDirectory, volumeId);
        var image = Path.Combine(dir, "volume.img");
        var mount = Path.Combine(dir, "mnt");
        lock (_volumeLock)
        {
            if (Syscalls.IsMountPoint(mount))
            {
                return mount;
            }

            if (!File.Exists(image))
            {
                throw new SandboxRuntimeException("The volume's files are missing on this host.", $"no {image}");
            }

            Directory.CreateDirectory(mount, Modes.RootOnly);
            try
            {
                LoopDevice.Mount(image, mount, "ext4", Syscalls.MS_NOSUID | Syscalls.MS_NODEV);
            }
            catch (IOException ex)
            {
                throw new SandboxRuntimeException("The volume could not be mounted; the server log says why.", ex.Message, ex);
            }

            return mount;
        }
    }

    /// <summary>Mounts each volume's id-mapped view in the bundle; returns them as bind mounts for the config.</summary>
    private List<(string Source, string Destination, bool ReadOnly)> MountVolumes(string dir, IReadOnlyList<VolumeMount> volumes, UndoStack undo)
    {
        var binds = new List<(string, string, bool)>();
        if (volumes.Count == 0)
        {
            return binds;
        }

        using var userNamespace = int.TryParse(ReadRange(dir), out var range) ? _namespaces.LeaseRange(range) : throw new IOException($"no id range in {dir}");
        for (var i = 0; i < volumes.Count; i++)
        {
            var view = Path.Combine(dir, $"volume{i}");
            Directory.CreateDirectory(view);
            IdmappedMount.Mount(MountVolume(volumes[i].VolumeId), view, userNamespace.Fd, volumes[i].ReadOnly);
            undo.Push($"volume {i}", () => Unmount(view));
            binds.Add((view, volumes[i].Path, volumes[i].ReadOnly));
        }

        return binds;
    }
}
