using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Cordon.Runtime.Cgroups;
using Cordon.Runtime.Interop;
using Cordon.Runtime.Network;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cordon.Runtime.Oci;

/// <summary>Runs sandboxes as OCI containers with crun (default) or runc.</summary>
/// <remarks>
/// Per sandbox, under <see cref="OciRuntimeOptions.StateDirectory"/>/{id}: <c>config.json</c>; <c>layer.img</c>
/// mounted at <c>layer/</c>, the size-limited ext4 image holding the writable layer; <c>lowerN/</c>, where the
/// id-mapped read-only views of the image layers were mounted (detached once the overlay holds them);
/// <c>rootfs/</c>, the overlay crun uses as root; <c>agent.sock</c>, the agent's socket; <c>range</c>, the
/// sandbox's id range index. Only <c>rootfs/</c> and <c>layer/</c> stay mounts.
/// </remarks>
public sealed partial class OciRuntime : ISandboxRuntime, IDisposable
{
    private readonly OciRuntimeOptions _options;
    private readonly ILogger<OciRuntime> _logger;
    private readonly IdRangeAllocator _ranges;
    private readonly UserNamespaceCache _namespaces;
    private readonly CgroupHost _cgroups = CgroupHost.Detect();
    private readonly CpuPlacement _cpus = CpuPlacement.ForThisProcess();
    private readonly LxcfsHost _lxcfs;
    private readonly ExitWatcher _exits = new();
    private readonly WritableLayer _layers;
    private readonly RootPreparer _roots;
    private readonly LayerPool _pool;
    private readonly LaunchNamespace _launch;
    private readonly SemaphoreSlim _probeLock = new(1, 1);
    private readonly Lock _diskLock = new();
    private DiskSpace? _disk;
    private long _diskReadAt;
    private RuntimeCapabilities? _capabilities;
    private byte[]? _seccompBpf;
    private SealedBinary? _sealedRuntime;
    private readonly RuntimeProgram _program;

    /// <summary>The host's side of sandbox networks; null until the probe found the host able (then never again).</summary>
    private HostNetwork? _network;
    private readonly ConcurrentDictionary<string, int> _slots = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, string> _slotOwners = new();
    private int _disposeCount;
    private string? _emptyDirectory;

    /// <summary>Network namespaces of sandboxes stopped by <see cref="StopAsync"/>, held from just before their processes
    /// ended until their destroy gives them back to the pool (or a start gives them up).</summary>
    private readonly ConcurrentDictionary<string, SafeHandle> _stoppedNetworks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SafeHandle> _heldMounts = new(StringComparer.Ordinal);
    private readonly NamespaceReleaser _releaser = new();

    public OciRuntime(IOptions<OciRuntimeOptions> options, ILogger<OciRuntime> logger)
    {
        _options = options.Value;
        _logger = logger;
        _ranges = new IdRangeAllocator(_options.IdRangeStart, _options.MaxSandboxes, _options.IdRangeClaims, Path.GetFullPath(_options.StateDirectory));
        _namespaces = new UserNamespaceCache(_ranges);
        _pool = new LayerPool(Path.GetFullPath(_options.StateDirectory), _options.PoolSizeGiB);
        _layers = new WritableLayer(Path.Combine(_options.StateDirectory, ".layers"));
        _roots = new RootPreparer(Path.Combine(_options.StateDirectory, ".prepared"), _options.PreparedRoots, _options.PreparedRootKinds, BuildRoot, RemoveBundle, SnapshotDirectory);
        _program = RuntimeProgram.Select(_options);
        _lxcfs = new LxcfsHost(_options.LxcfsPath, _options.LxcfsMountPoint);
        _launch = new LaunchNamespace(_options.StateDirectory, () => [Path.GetFullPath(_options.StateDirectory), .. _lxcfs.Mounts.Count > 0 ? [_lxcfs.MountPoint] : Array.Empty<string>()]);
        _exits.Exited += id =>
        {
            try
            {
                SandboxExited?.Invoke(id);
            }
            catch (Exception ex)
            {
                LogExitNotHandled(id, ex.Message);
            }
        };
    }

    public event Action<string>? SandboxExited;

    public string Name => _options.Runtime;

    /// <summary>The mounts of the namespace the runtime starts from (for tests of what it holds).</summary>
    internal Task<List<(string Point, string Type)>> LaunchNamespaceMounts() => _launch.MountsAsync();

    /// <summary>The mount namespace the last sandbox was started in (for tests).</summary>
    internal string? LastLaunchNamespace => _launch.LastLaunch;

    /// <summary>The roots kept ready (for tests of their bound).</summary>
    internal RootPreparer PreparedRoots => _roots;

    public async ValueTask CreateAsync(SandboxSpec spec, CancellationToken cancellationToken)
    {
        var capabilities = await ProbeAsync(cancellationToken);
        if (!capabilities.Available)
        {
            throw new SandboxRuntimeException("This host cannot create sandboxes right now: " + string.Join(" ", capabilities.Problems));
        }

        var stopwatch = Stopwatch.StartNew();
        var dir = BundleDirectory(spec.Id);
        var undo = new UndoStack();
        try
        {
            int hostId;
            var started = stopwatch.Elapsed.TotalMilliseconds;
            if ((spec.Snapshots.Count == 0 || spec.SnapshotsOfImage) && _roots.TryTake(spec.Layers, spec.Snapshots, spec.Limits.DiskMiB) is { } prepared)
            {
                // A directory holding mounts can be renamed; the mounts move with it.
                Directory.Move(prepared.Directory, dir);
                undo.Push("prepared root", () => RemoveBundle(dir));
                hostId = prepared.HostId;
            }
            else
            {
                hostId = BuildRoot(dir, spec.Layers, spec.Snapshots, spec.Limits.DiskMiB, undo);
            }

            var layerDone = stopwatch.Elapsed.TotalMilliseconds;
            var cpuset = _options.PinCpus ? _cpus.Place(spec.Id, spec.Limits.Cpus) : null;
            undo.Push("cpu placement", () => _cpus.Release(spec.Id));

            // Its network: a prepared namespace with its policy applied before anything in it runs; its resolver is
            // the server's, on the gateway.
            HostNetwork.Slot? slot = null;
            var views = new List<(string Source, string Destination)>([.. _lxcfs.Mounts ?? [], .. spec.Files])
            {
                (WriteOnlineCpus(dir, spec.Limits.Cpus), OnlineCpus),
            };
            if (_network is { } network)
            {
                slot = await network.TakeAsync(spec.Network, cancellationToken);
                undo.Push("network", async () =>
                {
                    slot.Dispose();
                    await network.ReleaseAsync(slot.Index, CancellationToken.None);
                });
                NetworkRecord.Of(slot.Index, spec.Network).Save(dir);
                var resolver = Path.Combine(dir, "resolv.conf");
                File.WriteAllText(resolver, $"nameserver {network.ServiceAddress}\noptions ndots:0\n");
                File.SetUnixFileMode(resolver, Modes.WorldReadable);
                views.Add((resolver, "/etc/resolv.conf"));
            }

            var volumes = MountVolumes(dir, spec.Volumes, undo);
            var crun = _options.Runtime == "crun";
            var config = OciBundleWriter.Build(spec, _options, _cgroups, hostId, crun ? _seccompBpf : null, cpuset, views, slot?.NamespacePath, volumes, crun ? EmptyDirectory() : null);
            OciBundleWriter.Write(dir, config);

            undo.Push("container", async () => await DeleteContainerAsync(spec.Id, CancellationToken.None));
            var runtimeStart = stopwatch.Elapsed.TotalMilliseconds;
            await RunContainerAsync(spec.Id, dir);
            undo.Commit();
            if (slot is not null)
            {
                AssignSlot(spec.Id, slot);
            }

            WatchExit(spec.Id);
            LogCreated(spec.Id, stopwatch.Elapsed.TotalMilliseconds, layerDone - started, runtimeStart - layerDone, stopwatch.Elapsed.TotalMilliseconds - runtimeStart);
        }
        catch (Exception ex)
        {
            var failures = await undo.RollbackAsync();
            foreach (var failure in failures)
            {
                LogUndoFailed(spec.Id, failure);
            }

            if (ex is SandboxRuntimeException or OperationCanceledException)
            {
                throw;
            }

            throw new SandboxRuntimeException("The sandbox could not be created. The server log has the details.", ex.Message, ex);
        }
    }

    /// <summary>Starts the container of a bundle that is ready (root mounted, config.json written).</summary>
    private async Task RunContainerAsync(string id, string dir)
    {
        // The agent's socket is bound here, on the host, and handed to the agent as fd 3: the sandbox never sees a
        // socket path it could replace, and connections queue in the backlog until the agent accepts them, so there
        // is nothing to poll for.
        var log = Path.Combine(dir, "runtime.log");
        int exit;
        var listener = ListeningSocket.Create(AgentSocketPath(id), 512);
        int Spawn() => HostSpawn.Start(RuntimeExecutable,
            [.. RuntimeArgs(log), "run", "--detach", "--preserve-fds", "1", "--pid-file", Path.Combine(dir, "pid"), "--bundle", dir, id],
            [(listener, 3)], _options.Runtime);
        try
        {
            // Started in the launch namespace, with this sandbox's mounts only (LaunchNamespace says why); in the
            // host's namespace if that cannot be had.
            var mounts = LaunchMounts(dir);
            int pid;
            try
            {
                pid = await _launch.LaunchAsync(mounts, Spawn);
            }
            catch (IOException ex)
            {
                LogLaunchNamespaceFailed(ex.Message);
                mounts = [];
                pid = Spawn();
            }

            try
            {
                exit = await HostSpawn.WaitAsync(pid);
            }
            finally
            {
                if (mounts.Count > 0)
                {
                    await _launch.DetachAsync(mounts);
                }
            }
        }
        finally
        {
            Syscalls.close(listener); // the agent holds its own copy
        }

        if (exit != 0)
        {
            throw new SandboxRuntimeException(
                $"The {_options.Runtime} runtime refused to start the sandbox. The server log has the runtime's message.",
                $"{_options.Runtime} run exited {exit}: {ReadRuntimeLog(log)}");
        }
    }

    /// <summary>What the runtime needs of a sandbox's mounts to start it: its root, its volumes, the network
    /// namespace a stopped sandbox kept.</summary>
    private static IReadOnlyList<string> LaunchMounts(string dir)
        => [Path.Combine(dir, "rootfs"), .. Directory.EnumerateDirectories(dir, "volume*"), Path.Combine(dir, "netns")];

    public async ValueTask PauseAsync(string id, CancellationToken cancellationToken)
    {
        await RunOrThrowAsync("pause", id, "paused", cancellationToken);

        // On cgroup v1 the runtime can return while the freezer still says FREEZING (a process in the middle of
        // a system call): paused means every process has stopped.
        var waited = Stopwatch.StartNew();
        while (!_cgroups.IsFrozen(_options.CgroupParent, id))
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(5))
            {
                await RunOrThrowAsync("resume", id, "resumed", CancellationToken.None);
                throw new SandboxRuntimeException("The sandbox could not be paused: its processes did not all stop; it keeps running.", $"freezer of {id} not frozen 5 s after pause");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(1), cancellationToken);
        }
    }

    public async ValueTask ResumeAsync(string id, CancellationToken cancellationToken)
        => await RunOrThrowAsync("resume", id, "resumed", cancellationToken);

    private async Task RunOrThrowAsync(string verb, string id, string past, CancellationToken cancellationToken)
    {
        var result = await ExternalProgram.RunAsync(RuntimeExecutable, [.. RuntimeArgs(null), verb, id], cancellationToken);
        if (!result.Succeeded)
        {
            throw new SandboxRuntimeException($"The sandbox could not be {past}.", $"{_options.Runtime} {verb} {id}: {result.Stderr.Trim()}");
        }
    }

    public async ValueTask DestroyAsync(string id, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        try
        {
            await StopAsync(id, cancellationToken);

            // Once PID 1 is dead nothing uses the mounts; the runtime removes its state and the cgroup.
            await DeleteContainerAsync(id, cancellationToken);

            // A stopped sandbox's kept namespace is unmounted before its slot is given back.
            Syscalls.umount2(Path.Combine(BundleDirectory(id), "netns"), Syscalls.MNT_DETACH);
            await ReleaseNetworkAsync(id, BundleDirectory(id), _stoppedNetworks.TryRemove(id, out var ns) ? ns : null);
            RemoveBundle(BundleDirectory(id));
            _cpus.Release(id);

            _cgroups.RemoveLeftovers(_options.CgroupParent, id);
            LogDestroyed(id, stopwatch.Elapsed.TotalMilliseconds);
        }
        finally
        {
            ReleaseMounts(id);
        }
    }

    /// <summary>Watches the sandbox's PID 1 (its pid file, checked to be in the sandbox's cgroup), so its exit is
    /// reported at once (<see cref="SandboxExited"/>).</summary>
    private void WatchExit(string id)
    {
        if (InitPid(id) is not { } pid || !_exits.Watch(id, pid))
        {
            // Gone already: reported as an exit, as a watch would have.
            SandboxExited?.Invoke(id);
        }
    }

    /// <summary>The host pid of the sandbox's PID 1, from its pid file, when that process is still in the
    /// sandbox's cgroup (so a pid reused by another process after a crash is never taken for it).</summary>
    private int? InitPid(string id)
    {
        var pidFile = Path.Combine(BundleDirectory(id), "pid");
        try
        {
            if (!int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) || pid <= 1)
            {
                return null;
            }

            return File.ReadAllText($"/proc/{pid}/cgroup").Contains(CgroupHost.CgroupsPath(_options.CgroupParent, id), StringComparison.Ordinal) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Kills the sandbox's PID 1 (the kernel then kills every process of its pid namespace before PID 1
    /// finishes exiting). The pid is checked to still be in the sandbox's cgroup, so a pid reused by another
    /// process after a crash is never signalled.</summary>
    private void KillInit(string id)
    {
        if (InitPid(id) is { } pid)
        {
            HostSpawn.kill(pid, 9);
        }
    }

    public async ValueTask StopAsync(string id, CancellationToken cancellationToken)
    {
        _exits.Unwatch(id); // ended on purpose: not an exit to report

        // Its network namespace, taken before its processes end (they hold it), for the sandbox after it once this one
        // is destroyed (a start gives it up).
        if (_network is not null && _slots.ContainsKey(id) && !_stoppedNetworks.ContainsKey(id) && OpenNetworkNamespace(id) is { } ns
            && !_stoppedNetworks.TryAdd(id, ns))
        {
            ns.Dispose();
        }

        // Its mount namespace too, so that the last process to exit does not free it: freeing a mount namespace waits
        // for an RCU grace period (namespace_unlock), and that wait was the stop's (150 ms once a second on the CI
        // VM). Released after the sandbox's cleanup, off the caller's path (ReleaseMounts).
        if (!_heldMounts.ContainsKey(id) && OpenInitNamespace(id, "mnt") is { } mounts && !_heldMounts.TryAdd(id, mounts))
        {
            mounts.Dispose();
        }

        // A process leaves the cgroup's list a moment before it is a zombie (the kernel's cgroup_exit comes before
        // exit_notify): the processes there before the kill are waited for by pid as well.
        var running = new HashSet<int>(_cgroups.ProcessIds(_options.CgroupParent, id));
        KillInit(id);

        // A paused sandbox's processes are frozen: the kill takes effect once they are thawed.
        _cgroups.Thaw(_options.CgroupParent, id);

        // Done when nothing in the sandbox's cgroup runs any more. (PID 1 looking dead is not enough: the
        // kernel kills the rest of the pid namespace only when the last of the agent's threads has exited.)
        var waited = Stopwatch.StartNew();
        for (var round = 0; ; round++)
        {
            running.UnionWith(_cgroups.ProcessIds(_options.CgroupParent, id));
            running.RemoveWhere(pid => !IsRunning(pid)); // once seen dead, a pid is not looked at again (it may be reused)
            if (running.Count == 0)
            {
                break;
            }

            if (waited.Elapsed > TimeSpan.FromSeconds(10))
            {
                throw new SandboxRuntimeException("The sandbox's processes did not stop in time.", $"processes of {id} still alive 10 s after SIGKILL");
            }

            // A few looks at once (most sandboxes are gone within them), then one a millisecond: with many destroys
            // at a time, looking without pause took the CPU the kernel needed to end the processes.
            if (round < 3)
            {
                await Task.Yield();
            }
            else
            {
                await Task.Delay(1, cancellationToken);
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    private async Task DeleteContainerAsync(string id, CancellationToken cancellationToken)
    {
        // Exit status only: "does not exist" (destroy is idempotent) and real failures both leave a log line
        // in the runtime's own log, and the leftovers are removed below either way.
        var exit = await HostSpawn.RunAsync(RuntimeExecutable, [.. RuntimeArgs(null), "delete", "--force", id], argv0: _options.Runtime);
        if (exit != 0 && Directory.Exists(Path.Combine(_options.RuntimeRoot, id)))
        {
            LogRuntimeComplaint(id, $"{_options.Runtime} delete exited {exit}");
        }

        cancellationToken.ThrowIfCancellationRequested();
    }

    public async ValueTask<IReadOnlyList<RuntimeSandbox>> ListAsync(CancellationToken cancellationToken)
    {
        var statuses = new Dictionary<string, RuntimeSandboxStatus>(StringComparer.Ordinal);
        var list = await ExternalProgram.RunAsync(RuntimeExecutable, [.. RuntimeArgs(null), "list", "--format", "json"], cancellationToken);
        if (list.Succeeded && list.Stdout.TrimStart().StartsWith('['))
        {
            using var doc = JsonDocument.Parse(list.Stdout);
            foreach (var item in doc.RootElement.EnumerateArray())
            {
                var id = item.GetProperty("id").GetString() ?? "";
                var status = item.GetProperty("status").GetString();
                statuses[id] = status switch
                {
                    "running" => RuntimeSandboxStatus.Running,
                    "paused" => RuntimeSandboxStatus.Paused,
                    _ => StoppedOrLeftover(id),
                };
                if (statuses[id] is RuntimeSandboxStatus.Running or RuntimeSandboxStatus.Paused)
                {
                    WatchExit(id);
                }
            }
        }

        if (Directory.Exists(_options.StateDirectory))
        {
            foreach (var dir in Directory.EnumerateDirectories(_options.StateDirectory))
            {
                var id = Path.GetFileName(dir);
                if (!id.StartsWith('.'))
                {
                    statuses.TryAdd(id, StoppedOrLeftover(id));
                }
            }
        }

        return [.. statuses.Select(s => new RuntimeSandbox(s.Key, s.Value))];
    }

    /// <summary>A sandbox without processes can start again while its root is mounted and its bundle complete.</summary>
    private RuntimeSandboxStatus StoppedOrLeftover(string id)
    {
        var dir = BundleDirectory(id);
        return File.Exists(Path.Combine(dir, "config.json")) && Syscalls.IsMountPoint(Path.Combine(dir, "rootfs"))
            ? RuntimeSandboxStatus.Stopped
            : RuntimeSandboxStatus.Leftover;
    }

    public async ValueTask<Stream> ConnectAgentAsync(string id, CancellationToken cancellationToken)
    {
        try
        {
            var socket = await SafeUnixSocket.ConnectAsync(AgentSocketPath(id), cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (SocketException ex)
        {
            throw new SandboxRuntimeException("The sandbox's agent is not reachable: the sandbox may have stopped. Create a new sandbox.", ex.Message, ex);
        }
    }

    private const string OnlineCpus = "/sys/devices/system/cpu/online";

    /// <summary>Writes the sandbox's <c>/sys/devices/system/cpu/online</c> (CPUs 0 to ceil(limit) - 1, within the
    /// host's), in lxcfs's form. A file of the sandbox's own rather than lxcfs's view: glibc reads it in every
    /// program's start (the agent's runtime, Python's <c>os.cpu_count()</c>), and lxcfs answered each new sandbox's
    /// first read with a FUSE round trip and a fork into its pid namespace (create → echo cycles 6 % slower with
    /// lxcfs on, measured).</summary>
    private string WriteOnlineCpus(string dir, double cpus)
    {
        var count = Math.Clamp((int)Math.Ceiling(cpus), 1, _cpus.HostCpus);
        var path = Path.Combine(dir, "cpu-online");
        File.WriteAllText(path, count == 1 ? "0\n" : $"0-{count - 1}\n");
        File.SetUnixFileMode(path, Modes.WorldReadable);
        return path;
    }

    public async ValueTask<IReadOnlyDictionary<string, long>> NetworkRefusalsAsync(string id, CancellationToken cancellationToken)
        => _network is { } network && _slots.TryGetValue(id, out var slot)
            ? await network.RefusalsAsync(slot, cancellationToken)
            : new Dictionary<string, long>();

    public ValueTask<SandboxUsage?> GetUsageAsync(string id, CancellationToken cancellationToken)
    {
        var usage = _cgroups.ReadUsage(_options.CgroupParent, id);
        if (usage is not null && _network is { } network && _slots.TryGetValue(id, out var slot))
        {
            var (received, sent) = network.Traffic(slot);
            usage = usage with { NetworkReceivedBytes = received, NetworkSentBytes = sent };
        }

        return ValueTask.FromResult(usage);
    }

    public async ValueTask SetNetworkAsync(string id, SandboxNetwork network, CancellationToken cancellationToken)
    {
        if (_network is not { } host || !_slots.TryGetValue(id, out var slot))
        {
            throw new SandboxRuntimeException("This sandbox has no network to change: the host gives sandboxes none (see /health).", $"no network slot for {id}");
        }

        await host.ApplyAsync(slot, network, cancellationToken);
        NetworkRecord.Of(slot, network).Save(BundleDirectory(id));
    }

    public bool HasNetwork => _network is not null;

    public IPAddress? ServiceAddress => _network?.ServiceAddress;

    public IPAddress? AddressOf(string id) => _network is { } host && _slots.TryGetValue(id, out var slot) ? host.AddressOf(slot) : null;

    public string? SandboxAt(IPAddress address)
        => _network?.SlotOf(address) is { } slot && _slotOwners.TryGetValue(slot, out var id) ? id : null;

    /// <summary>Records the slot a sandbox now runs with. The server lets go of its namespace: the sandbox's processes
    /// hold it (a descriptor per live sandbox would be copied and closed by every program the server starts).</summary>
    private void AssignSlot(string id, HostNetwork.Slot slot)
    {
        slot.Dispose();
        _slots[id] = slot.Index;
        _slotOwners[slot.Index] = id;
    }

    /// <summary>A descriptor of a sandbox's network namespace, from its PID 1 (checked to be the sandbox's before and
    /// after the open, so a reused pid is never taken for it) or from the mount a stopped sandbox kept; null when
    /// neither is there.</summary>
    private SafeHandle? OpenNetworkNamespace(string id)
    {
        if (OpenInitNamespace(id, "net") is { } ns)
        {
            return ns;
        }

        try
        {
            var kept = Path.Combine(BundleDirectory(id), "netns");
            return InitPid(id) is null && Syscalls.IsMountPoint(kept) ? File.OpenHandle(kept, FileMode.Open, FileAccess.Read) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>A descriptor of one of the namespaces of the sandbox's PID 1 (<c>net</c>, <c>mnt</c>), checked to be the
    /// sandbox's before and after the open; null when it has none running.</summary>
    private SafeHandle? OpenInitNamespace(string id, string kind)
    {
        try
        {
            if (InitPid(id) is not { } pid)
            {
                return null;
            }

            var ns = File.OpenHandle($"/proc/{pid}/ns/{kind}", FileMode.Open, FileAccess.Read);
            if (InitPid(id) == pid)
            {
                return ns;
            }

            ns.Dispose();
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Drops the sandbox's mount namespace that <see cref="StopAsync"/> held, on the releasing thread (the
    /// grace period its freeing waits for is paid there).</summary>
    private void ReleaseMounts(string id)
    {
        if (_heldMounts.TryRemove(id, out var mounts))
        {
            _releaser.Release(mounts);
        }
    }

    /// <summary>Gives a destroyed sandbox's network back: its namespace to the pool when <paramref name="ns"/> has it
    /// (the pool checks it is clean), else the slot is released.</summary>
    private async Task ReleaseNetworkAsync(string id, string dir, SafeHandle? ns = null)
    {
        var slot = _slots.TryRemove(id, out var known) ? known : NetworkRecord.Load(dir)?.Slot;
        if (slot is { } index && _network is { } host)
        {
            _slotOwners.TryRemove(index, out _);
            await (ns is not null ? host.ReturnAsync(host.SlotAt(index, ns)) : host.ReleaseAsync(index, CancellationToken.None));
        }
        else
        {
            ns?.Dispose();
        }
    }

    public DiskSpace GetDiskSpace()
    {
        lock (_diskLock)
        {
            if (_disk is { } known && Environment.TickCount64 - _diskReadAt < 2000)
            {
                return known;
            }

            // Each writable layer is an ext4 file system of its own, mounted at <dir>/layer (its upper directory
            // exists only while it is mounted): what it uses is what its sparse image file takes on the host.
            // Sandboxes come and go meanwhile: a layer unmounted or removed between the check and the read is skipped,
            // as is one that reads as the host's own file system (no longer mounted).
            var host = new DriveInfo(_options.StateDirectory);
            long used = 0;
            foreach (var dir in Directory.EnumerateDirectories(_options.StateDirectory, "*", new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = true }))
            {
                var layer = Path.Combine(dir, "layer");
                try
                {
                    if (Directory.Exists(Path.Combine(layer, "upper")) && new DriveInfo(layer) is var drive && drive.TotalSize != host.TotalSize)
                    {
                        used += drive.TotalSize - drive.TotalFreeSpace;
                    }
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                }
            }

            // On a pool image (LayerPool), what is free is the least of the pool's room and its host's: the pool is
            // sparse and can promise more than the disk under it holds.
            var available = host.AvailableFreeSpace;
            if (File.Exists(_pool.ImagePath))
            {
                available = Math.Min(available, new DriveInfo(Path.GetDirectoryName(_pool.ImagePath)!).AvailableFreeSpace);
            }

            _disk = new DiskSpace(available, used);
            _diskReadAt = Environment.TickCount64;
            return _disk;
        }
    }

    /// <summary>The runtime from its sealed copy when there is one (see <see cref="SealedBinary"/>).</summary>
    private string RuntimeExecutable => _sealedRuntime?.Path ?? _program.Path;

    private string BundleDirectory(string id) => Path.Combine(_options.StateDirectory, id);

    /// <summary>An empty directory, owned by the host's root and read-only to everyone, bound over masked directories
    /// (made on the first create, not looked at again).</summary>
    private string EmptyDirectory()
        => _emptyDirectory ??= Directory.CreateDirectory(Path.Combine(_options.StateDirectory, ".empty"),
            UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute).FullName;

    private string AgentSocketPath(string id) => Path.Combine(BundleDirectory(id), "agent.sock");

    private List<string> RuntimeArgs(string? log)
    {
        var args = new List<string> { "--root", _options.RuntimeRoot };
        if (log is not null)
        {
            args.AddRange(["--log", log, "--log-format", "json"]);
        }

        return args;
    }

    private static string? ReadRange(string dir)
    {
        var file = Path.Combine(dir, "range");
        return File.Exists(file) ? File.ReadAllText(file).Trim() : null;
    }

    private static string ReadRuntimeLog(string log)
    {
        if (!File.Exists(log))
        {
            return "(no log)";
        }

        var lines = File.ReadAllLines(log);
        return string.Join(" | ", lines.TakeLast(5));
    }

    public void Dispose()
    {
        // The container disposes this twice (it is registered as itself and as ISandboxRuntime): what it releases
        // includes raw descriptors, and a second close would close another file that has the number by then (a
        // test process running server after server lost a sealed runtime and a pipe that way).
        if (Interlocked.Exchange(ref _disposeCount, 1) != 0)
        {
            return;
        }

        _roots.Dispose();
        _launch.Dispose();
        _network?.Dispose();
        foreach (var ns in _stoppedNetworks.Values.Concat(_heldMounts.Values))
        {
            ns.Dispose();
        }

        _releaser.Dispose();

        // Leave the host as found when no sandbox outlives the server: unmount the snapshots (mounted again when
        // used), undo the private mount (the pool's image stays, with the snapshots in it) and remove the runtime's
        // (empty) state directory.
        if (Directory.Exists(_options.StateDirectory)
            && !Directory.EnumerateDirectories(_options.StateDirectory).Any(d => !Path.GetFileName(d).StartsWith('.')))
        {
            foreach (var snapshot in ListSnapshots())
            {
                Unmount(Path.Combine(SnapshotDirectory(snapshot), "mnt"));
            }

            foreach (var volume in ListVolumes())
            {
                Unmount(Path.Combine(VolumesDirectory, volume, "mnt"));
            }
        }

        if (Directory.Exists(_options.StateDirectory)
            && !Directory.EnumerateDirectories(_options.StateDirectory).Any(d => !Path.GetFileName(d).StartsWith('.'))
            && Syscalls.MountsBelow(_options.StateDirectory).Count == 0)
        {
            Syscalls.umount2(_options.StateDirectory, Syscalls.MNT_DETACH);
            RemoveIfEmpty(_options.RuntimeRoot);
            RemoveIfEmpty(Path.GetDirectoryName(_options.RuntimeRoot)!);
        }

        _exits.Dispose();
        _namespaces.Dispose();
        _probeLock.Dispose();
        _sealedRuntime?.Dispose();
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "Host problem: {Problem}")]
    private partial void LogHostProblem(string problem);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Host fixed: {Fix}")]
    private partial void LogHostFixed(string fix);

    [LoggerMessage(EventId = 1019, Level = LogLevel.Warning, Message = "The runtime starts in the host's mount namespace (slower with many sandboxes): {Detail}")]
    private partial void LogLaunchNamespaceFailed(string detail);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Debug, Message = "Sandbox {Id} created in {Milliseconds:F1} ms: layer {Layer:F1}, root {Root:F1}, runtime {Runtime:F1}")]
    private partial void LogCreated(string id, double milliseconds, double layer, double root, double runtime);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Debug, Message = "Sandbox {Id} destroyed in {Milliseconds:F1} ms")]
    private partial void LogDestroyed(string id, double milliseconds);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Undo of a failed creation of sandbox {Id} failed: {Failure}")]
    private partial void LogUndoFailed(string id, string failure);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Information, Message = "Host tuning skipped: {Note}")]
    private partial void LogTuningSkipped(string note);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "Runtime: {Note}")]
    private partial void LogStaticRuntimeUnused(string note);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Error, Message = "The exit of sandbox {Id} could not be handled: {Message}")]
    private partial void LogExitNotHandled(string id, string message);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Runtime complained while deleting sandbox {Id}: {Message}")]
    private partial void LogRuntimeComplaint(string id, string message);
}
