using System.Collections.Concurrent;
using Cordon.Runtime.Interop;

namespace Cordon.Runtime.Oci;

/// <summary>Each sandbox's writable layer: a sparse ext4 image of the sandbox's disk size on the host's disk,
/// mounted through a loop device.</summary>
/// <remarks>
/// Why not tmpfs: tmpfs pages are charged to the sandbox's memory cgroup and cannot be reclaimed, so a
/// sandbox that writes more files than its memory limit gets OOM-killed, agent and all. An image file is
/// disk-backed, its page cache is reclaimable, and its size is a hard limit (ENOSPC).
/// Speed: formatting costs ~8 ms, so each size is formatted once into a template and each layer is a sparse
/// copy (~1 MiB). Attaching and mounting still costs ~4 ms, so a few empty layers of each size in use are
/// prepared ahead, in the background, and moved into place (MS_MOVE) when a sandbox is created. They hold
/// nothing until then: the sandbox itself is still created from scratch.
/// </remarks>
internal sealed class WritableLayer
{
    private readonly string _directory;
    private readonly int _poolSize;
    private readonly ConcurrentDictionary<long, Lazy<string>> _templates = new();
    private readonly ConcurrentDictionary<long, ConcurrentQueue<string>> _ready = new();
    private readonly SemaphoreSlim _wanted = new(0);
    private readonly Thread? _preparer;
    private volatile bool _closed;

    public WritableLayer(string directory, int poolSize)
    {
        _directory = directory;
        _poolSize = poolSize;
        if (poolSize > 0)
        {
            _preparer = new Thread(PrepareLoop) { IsBackground = true, Name = "layer-preparer" };
            _preparer.Start();
        }
    }

    private string PoolDirectory => Path.Combine(_directory, "pool");

    /// <summary>Puts a layer of <paramref name="sizeMiB"/> at <paramref name="mountPoint"/>, its image at <paramref name="image"/>.</summary>
    public void Create(string image, string mountPoint, long sizeMiB)
    {
        if (_ready.TryGetValue(sizeMiB, out var queue) && queue.TryDequeue(out var prepared))
        {
            try
            {
                File.Move(Path.Combine(prepared, "layer.img"), image);
                if (Syscalls.mount(Path.Combine(prepared, "mnt"), mountPoint, null, Syscalls.MS_MOVE, null) == 0)
                {
                    Directory.Delete(prepared, recursive: true);
                    Refill(sizeMiB);
                    return;
                }
            }
            catch (IOException)
            {
            }

            // Could not take it (a shared mount parent refuses MS_MOVE): drop it and make one here.
            Discard(prepared);
            File.Delete(image);
        }

        CreateHere(image, mountPoint, sizeMiB);
        Refill(sizeMiB);
    }

    /// <summary>Starts preparing layers of a size before the first sandbox asks for one.</summary>
    public void Prepare(long sizeMiB) => Refill(sizeMiB);

    /// <summary>Stops preparing layers and releases the prepared ones (they hold nothing).</summary>
    public void Close()
    {
        _closed = true;
        foreach (var queue in _ready.Values)
        {
            while (queue.TryDequeue(out var prepared))
            {
                Discard(prepared);
            }
        }

        _wanted.Release();
        _preparer?.Join(TimeSpan.FromSeconds(10));
        ClearPool();
    }

    /// <summary>Removes prepared layers left by an earlier server.</summary>
    public void ClearPool()
    {
        if (!Directory.Exists(PoolDirectory))
        {
            return;
        }

        foreach (var prepared in Directory.EnumerateDirectories(PoolDirectory))
        {
            Discard(prepared);
        }
    }

    private void Refill(long sizeMiB)
    {
        _ready.GetOrAdd(sizeMiB, _ => new ConcurrentQueue<string>());
        if (!_closed && _poolSize > 0)
        {
            _wanted.Release();
        }
    }

    /// <summary>Keeps every queue full, on one thread at the lowest CPU priority: preparing a layer ahead
    /// must never take the CPU from a sandbox being created right now.</summary>
    private void PrepareLoop()
    {
        Syscalls.LowerThreadPriority();
        while (!_closed)
        {
            _wanted.Wait();
            foreach (var (size, queue) in _ready)
            {
                while (!_closed && queue.Count < _poolSize)
                {
                    var prepared = Path.Combine(PoolDirectory, Guid.NewGuid().ToString("N"));
                    var mount = Path.Combine(prepared, "mnt");
                    Directory.CreateDirectory(mount);
                    try
                    {
                        CreateHere(Path.Combine(prepared, "layer.img"), mount, size);
                    }
                    catch (IOException)
                    {
                        Discard(prepared);
                        break; // creates make their layers inline meanwhile
                    }

                    queue.Enqueue(prepared);
                }
            }
        }
    }

    private void CreateHere(string image, string mountPoint, long sizeMiB)
    {
        var template = _templates.GetOrAdd(sizeMiB, size => new Lazy<string>(() => Format(size))).Value;
        SparseFile.Copy(template, image);
        var (device, fd) = LoopDevice.Attach(image);
        try
        {
            if (Syscalls.mount(device, mountPoint, "ext4", Syscalls.MS_NOSUID | Syscalls.MS_NODEV, "") != 0)
            {
                throw new IOException($"mount ext4 {device} at {mountPoint}: {Syscalls.LastError()}");
            }
        }
        finally
        {
            Syscalls.close(fd); // the mount now holds the device; unmounting releases it (autoclear)
        }

        Directory.Delete(Path.Combine(mountPoint, "lost+found"));
    }

    private static void Discard(string prepared)
    {
        Syscalls.umount2(Path.Combine(prepared, "mnt"), Syscalls.MNT_DETACH);
        try
        {
            Directory.Delete(prepared, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private string Format(long sizeMiB)
    {
        var templates = Path.Combine(_directory, "templates");
        Directory.CreateDirectory(templates);
        var path = Path.Combine(templates, $"ext4-{sizeMiB}m.img");
        if (File.Exists(path))
        {
            return path;
        }

        var partial = path + "." + Guid.NewGuid().ToString("N") + ".partial";
        using (var file = File.OpenHandle(partial, FileMode.CreateNew, FileAccess.Write))
        {
            RandomAccess.SetLength(file, sizeMiB << 20);
        }

        // No journal (the layer dies with its sandbox), no reserved blocks, lazy inode tables.
        var result = ExternalProgram.RunAsync("/sbin/mkfs.ext4",
            ["-q", "-F", "-O", "^has_journal", "-m", "0", "-E", "lazy_itable_init=1,nodiscard", "-L", "cordon-layer", partial],
            CancellationToken.None).GetAwaiter().GetResult();
        if (!result.Succeeded)
        {
            File.Delete(partial);
            throw new IOException($"mkfs.ext4 failed: {result.Stderr.Trim()}");
        }

        File.Move(partial, path, overwrite: true);
        return path;
    }
}
