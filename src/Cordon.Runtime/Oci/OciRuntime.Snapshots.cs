using System.Diagnostics;
using System.Text.Json.Nodes;
using Cordon.Runtime.Interop;
using Cordon.Runtime.Network;

namespace Cordon.Runtime.Oci;

/// <summary>Snapshots of writable layers and the restart of stopped sandboxes.</summary>
/// <remarks>
/// A snapshot lives in <c>.snapshots/{snapshotId}/</c> beside the sandboxes, on the same reflink file system
/// (<see cref="LayerPool"/>): <c>layer.img</c>, a clone of the sandbox's writable-layer image taken while that file
/// system was frozen; <c>base</c>, the first host id of the range the sandbox had (its files are owned by ids of that
/// range). It is mounted read-only once, at <c>mnt/</c>, when a sandbox first needs it; each sandbox then sees its
/// upper directory through an id mapping from that range to its own, as one more read-only layer above the image's.
/// </remarks>
public sealed partial class OciRuntime
{
    /// <summary>In a sandbox's directory while a snapshot has its processes frozen.</summary>
    private const string SnapshotFreezeMark = "snapshot-freeze";

    private readonly Lock _snapshotMountLock = new();

    private string SnapshotsDirectory => Path.Combine(_options.StateDirectory, ".snapshots");

    private string SnapshotDirectory(string snapshotId) => Path.Combine(SnapshotsDirectory, snapshotId);

    public async ValueTask SnapshotAsync(string id, string snapshotId, CancellationToken cancellationToken)
    {
        if (!_pool.Reflinks)
        {
            throw new SandboxRuntimeException("Snapshots and forks are not available on this host; GET /health says why.", "the layer pool cannot clone");
        }

        var dir = BundleDirectory(id);
        var layer = Path.Combine(dir, "layer");
        if (!int.TryParse(ReadRange(dir), out var range) || !Directory.Exists(Path.Combine(layer, "upper")))
        {
            throw new SandboxRuntimeException("The sandbox's file system is not there to snapshot.", $"no mounted writable layer in {dir}");
        }

        var target = SnapshotDirectory(snapshotId);
        Directory.CreateDirectory(SnapshotsDirectory, Modes.RootOnly);
        Directory.CreateDirectory(target, Modes.RootOnly);
        try
        {
            File.WriteAllText(Path.Combine(target, "base"), _ranges.HostIdOf(range).ToString(System.Globalization.CultureInfo.InvariantCulture));

            // The clone sees one instant of the file system: nothing in the sandbox runs (its processes are frozen,
            // or were already: paused, or stopped), and what they wrote is on the image. Only the sandbox's own
            // processes write there (the server's file requests go through its agent). The cgroup freezer, not the
            // file system's (FIFREEZE), which waits for three RCU grace periods: 25–50 ms on a busy 2-core host, for
            // each fork. Where the processes do not all stop within a second, the file system is frozen instead.
            var froze = await FreezeProcessesAsync(id, dir, cancellationToken);
            try
            {
                if (froze is false)
                {
                    FileClone.Freeze(layer);
                }
                else
                {
                    FileClone.Sync(layer);
                }

                FileClone.Clone(Path.Combine(dir, "layer.img"), Path.Combine(target, "layer.img"));
            }
            finally
            {
                if (froze is false)
                {
                    FileClone.Thaw(layer);
                }

                ThawProcesses(id, dir, froze);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            Directory.Delete(target, recursive: true);
            if (ex is OperationCanceledException)
            {
                throw;
            }

            throw new SandboxRuntimeException("The snapshot could not be taken; the server log says why.", ex.Message, ex);
        }
    }

    /// <summary>Marks the sandbox (so a crash before the thaw is thawed at the next start) and freezes its cgroup, unless
    /// it has no processes or they are frozen already.</summary>
    /// <returns>True when this froze them, null when they needed no freezing, false when they did not all stop in
    /// time (they are running again).</returns>
    private async Task<bool?> FreezeProcessesAsync(string id, string dir, CancellationToken cancellationToken)
    {
        if (InitPid(id) is null || _cgroups.IsFrozen(_options.CgroupParent, id))
        {
            return null;
        }

        File.WriteAllBytes(Path.Combine(dir, SnapshotFreezeMark), []);
        if (!_cgroups.Freeze(_options.CgroupParent, id))
        {
            File.Delete(Path.Combine(dir, SnapshotFreezeMark));
            return false;
        }

        var waited = Stopwatch.StartNew();
        for (var spins = 0; !_cgroups.IsFrozen(_options.CgroupParent, id); spins++)
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(1) || cancellationToken.IsCancellationRequested)
            {
                ThawProcesses(id, dir, froze: true);
                cancellationToken.ThrowIfCancellationRequested();
                return false;
            }

            // Sleeping processes stop at once: a few looks first, then 1 ms waits.
            if (spins < 20)
            {
                Thread.Yield();
            }
            else
            {
                await Task.Delay(TimeSpan.FromMilliseconds(1), CancellationToken.None);
            }
        }

        return true;
    }

    private void ThawProcesses(string id, string dir, bool? froze)
    {
        if (froze is true)
        {
            _cgroups.Thaw(_options.CgroupParent, id);
            File.Delete(Path.Combine(dir, SnapshotFreezeMark));
        }
    }

    public ValueTask DeleteSnapshotAsync(string snapshotId, CancellationToken cancellationToken)
    {
        _roots.Forget(snapshotId); // a built image's prepared roots stack it
        var target = SnapshotDirectory(snapshotId);
        lock (_snapshotMountLock)
        {
            if (Directory.Exists(target))
            {
                // Detached: overlays of sandboxes still holding it (there should be none) keep their own reference.
                Unmount(Path.Combine(target, "mnt"));
                if (!TryRemoveFlat(target))
                {
                    throw new SandboxRuntimeException("The snapshot's files could not be removed; the server log says why.", $"{target} is busy or not flat");
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    public IReadOnlyList<string> ListSnapshots()
        => Directory.Exists(SnapshotsDirectory) ? [.. Directory.EnumerateDirectories(SnapshotsDirectory).Select(Path.GetFileName).OfType<string>()] : [];

    /// <summary>The snapshot's upper directory (its file system mounted read-only, once) and the first host id of
    /// the range its files belong to.</summary>
    private (string Upper, long Base) MountSnapshot(string snapshotId)
    {
        var target = SnapshotDirectory(snapshotId);
        var image = Path.Combine(target, "layer.img");
        if (!File.Exists(image) || !long.TryParse(File.ReadAllText(Path.Combine(target, "base")).Trim(), out var first))
        {
            throw new SandboxRuntimeException("The snapshot's files are missing on this host.", $"no {image} or its base");
        }

        var mount = Path.Combine(target, "mnt");
        lock (_snapshotMountLock)
        {
            if (!Syscalls.IsMountPoint(mount))
            {
                Directory.CreateDirectory(mount, Modes.RootOnly);
                LoopDevice.Mount(image, mount, "ext4", Syscalls.MS_RDONLY | Syscalls.MS_NOSUID | Syscalls.MS_NODEV);
            }
        }

        return (Path.Combine(mount, "upper"), first);
    }

    public async ValueTask SuspendAsync(string id, CancellationToken cancellationToken)
    {
        // Its network namespace would end with its processes: a bind mount in its directory keeps it (the interface,
        // the address and the policy with it) for the next start, across server restarts too.
        var dir = BundleDirectory(id);
        var kept = Path.Combine(dir, "netns");
        if (_slots.ContainsKey(id) && InitPid(id) is { } pid && !Syscalls.IsMountPoint(kept))
        {
            File.WriteAllBytes(kept, []);
            if (Syscalls.mount($"/proc/{pid}/ns/net", kept, null, Syscalls.MS_BIND, null) != 0)
            {
                File.Delete(kept); // the next start makes a new namespace instead
            }
        }

        try
        {
            await StopAsync(id, cancellationToken);
            await DeleteContainerAsync(id, cancellationToken);
        }
        finally
        {
            ReleaseMounts(id);
        }
    }

    public async ValueTask StartAsync(string id, CancellationToken cancellationToken)
    {
        var dir = BundleDirectory(id);
        if (!Syscalls.IsMountPoint(Path.Combine(dir, "rootfs")))
        {
            throw new SandboxRuntimeException("The stopped sandbox's file system is no longer mounted (the host restarted), so it cannot start again.", $"{dir}/rootfs is not a mount");
        }

        if (Directory.Exists(Path.Combine(_options.RuntimeRoot, id)))
        {
            await DeleteContainerAsync(id, cancellationToken);
        }

        File.Delete(AgentSocketPath(id));
        File.Delete(Path.Combine(dir, "pid"));
        if (_stoppedNetworks.TryRemove(id, out var stopped))
        {
            stopped.Dispose();
        }

        // The network kept at suspend: the same namespace joins the sandbox again.
        var kept = Path.Combine(dir, "netns");
        if (Syscalls.IsMountPoint(kept))
        {
            SetNetworkNamespace(dir, kept);
            await RunContainerAsync(id, dir);
            WatchExit(id);
            return;
        }

        // Its network namespace ended with its processes (they died without a suspend): a new one, with the same
        // policy, joins the sandbox.
        if (_network is { } network && NetworkRecord.Load(dir) is { } previous)
        {
            await ReleaseNetworkAsync(id, dir);
            var slot = await network.TakeAsync(previous.Policy, cancellationToken);
            try
            {
                NetworkRecord.Of(slot.Index, previous.Policy).Save(dir);
                SetNetworkNamespace(dir, slot.NamespacePath);
                await RunContainerAsync(id, dir);
            }
            catch
            {
                slot.Dispose();
                await network.ReleaseAsync(slot.Index, CancellationToken.None);
                throw;
            }

            AssignSlot(id, slot);
        }
        else
        {
            await RunContainerAsync(id, dir);
        }

        WatchExit(id);
    }

    /// <summary>Points the bundle's config at the network namespace to join (rewritten only when it changes).</summary>
    private static void SetNetworkNamespace(string dir, string path)
    {
        var configPath = Path.Combine(dir, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!;
        var changed = false;
        foreach (var ns in config["linux"]!["namespaces"]!.AsArray())
        {
            if (ns!["type"]!.GetValue<string>() == "network" && ns["path"]?.GetValue<string>() != path)
            {
                ns["path"] = path;
                changed = true;
            }
        }

        if (changed)
        {
            File.WriteAllText(configPath, config.ToJsonString());
        }
    }

    /// <summary>Thaws the sandboxes and writable layers a crash left frozen in the middle of a snapshot (their
    /// processes and writers would otherwise wait for ever).</summary>
    private void ThawLeftovers(string dir)
    {
        if (File.Exists(Path.Combine(dir, SnapshotFreezeMark)))
        {
            ThawProcesses(Path.GetFileName(dir), dir, froze: true);
        }

        var layer = Path.Combine(dir, "layer");
        if (Directory.Exists(Path.Combine(layer, "upper")))
        {
            try
            {
                FileClone.Thaw(layer);
            }
            catch (IOException)
            {
            }
        }
    }
}
