using System.Net;
using System.Text.Json;
using Cordon.Runtime.Cgroups;
using Cordon.Runtime.Interop;
using Cordon.Runtime.Network;

namespace Cordon.Runtime.Oci;

/// <summary>What the host supports, checked once at start and repaired where Cordon can: the runtime program,
/// the agent, root, the cgroup layout, seccomp, the sandbox directory's mount, idmapped mounts, lxcfs; and the
/// sandboxes found from before (their id ranges and CPU placements).</summary>
public sealed partial class OciRuntime
{
    public async ValueTask<RuntimeCapabilities> ProbeAsync(CancellationToken cancellationToken)
    {
        await _probeLock.WaitAsync(cancellationToken);
        try
        {
            return _capabilities ??= await ProbeOnceAsync(cancellationToken);
        }
        finally
        {
            _probeLock.Release();
        }
    }

    private async Task<RuntimeCapabilities> ProbeOnceAsync(CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var warnings = new List<string>();
        var repaired = new List<string>();
        string? version = null;
        var runtimePath = _program.Path;
        if (_program.Note is { } programNote)
        {
            LogStaticRuntimeUnused(programNote);
        }

        if (!File.Exists(runtimePath))
        {
            problems.Add($"The OCI runtime '{_options.Runtime}' is not installed: apt-get install {_options.Runtime}, or set Runtime:RuntimePath.");
        }
        else
        {
            var result = await ExternalProgram.RunAsync(runtimePath, ["--version"], cancellationToken);
            version = result.Stdout.Split('\n').FirstOrDefault()?.Trim();
            if (_program.IsStaticBuild)
            {
                version += " (static build)";
            }

            try
            {
                _sealedRuntime = SealedBinary.Create(runtimePath);
            }
            catch (IOException ex)
            {
                // Slower (the runtime copies itself on every start), not less safe.
                LogTuningSkipped($"the runtime runs from its path, not a sealed copy: {ex.Message}");
            }
        }

        if (string.IsNullOrEmpty(_options.AgentPath) || !File.Exists(_options.AgentPath))
        {
            problems.Add("The cordon-agent binary was not found: build it with ./cordon (or set Runtime:AgentPath).");
        }

        if (Environment.UserName != "root")
        {
            problems.Add("Cordon must run as root to create sandboxes (mounts, cgroups and id ranges need it).");
        }

        var (fixedHybrid, hybridProblems) = _cgroups.RepairHybrid();
        repaired.AddRange(fixedHybrid);
        problems.AddRange(hybridProblems);
        // SECURITY: a host-wide kernel trade-off (faster cgroup moves, slightly slower fork/exit), not a change
        // to isolation. Off with Runtime:FavorDynamicCgroups=false.
        if (_options.FavorDynamicCgroups)
        {
            if (CgroupHost.FavorDynamicModifications(out var note) is { } tuned)
            {
                repaired.Add(tuned);
            }
            else if (note is not null)
            {
                LogTuningSkipped(note);
            }
        }

        var seccomp = false;
        if (_options.Runtime == "crun")
        {
            try
            {
                _seccompBpf = SeccompCompiler.CompileBpf();
                seccomp = true;
            }
            catch (InvalidOperationException ex)
            {
                problems.Add($"The seccomp filter could not be compiled: {ex.Message}");
            }
        }
        else
        {
            seccomp = true; // runc compiles the JSON profile itself
        }

        // SECURITY: 0711 (traverse, no listing): each sandbox's host ids must reach its own directory below, which
        // only they and root may enter (see BuildRoot). The runtime's state is root's alone.
        Directory.CreateDirectory(_options.StateDirectory);
        var live = Directory.EnumerateDirectories(_options.StateDirectory).Any(d => !Path.GetFileName(d).StartsWith('.'))
            || Syscalls.MountsBelow(_options.StateDirectory).Count > 0;
        if (_pool.Prepare(live) is { } poolProblem)
        {
            warnings.Add(poolProblem);
        }

        File.SetUnixFileMode(_options.StateDirectory, Modes.TraverseOnly);
        Directory.CreateDirectory(_options.RuntimeRoot, Modes.RootOnly);
        MakeStateDirectoryPrivate(problems);
        if (!File.Exists("/sbin/mkfs.ext4"))
        {
            problems.Add("mkfs.ext4 is missing (Debian package e2fsprogs); it formats each sandbox's writable layer.");
        }

        foreach (var dir in Directory.EnumerateDirectories(_options.StateDirectory))
        {
            if (int.TryParse(ReadRange(dir), out var index))
            {
                _ranges.MarkUsed(index);

                // A sandbox from an older version: its directory becomes its own (see BuildRoot).
                Syscalls.lchown(dir, 0, (int)_ranges.HostIdOf(index));
                File.SetUnixFileMode(dir, Modes.OwnerAllGroupTraverse);
            }

            RestorePlacement(dir);
            ThawLeftovers(dir);
        }

        _ranges.ReleaseStaleClaims();

        // After the cgroup repair: lxcfs finds the hierarchies when it starts.
        var lxcfs = false;
        if (_options.Lxcfs && problems.Count == 0)
        {
            if (await _lxcfs.EnsureRunningAsync(_cgroups, _options.CgroupParent, cancellationToken) is { } lxcfsProblem)
            {
                warnings.Add(lxcfsProblem);
            }
            else
            {
                lxcfs = true;
            }
        }

        var network = problems.Count == 0 && _options.Network && await StartNetworkAsync(warnings, cancellationToken);
        var idmapped = problems.Count == 0 && ProbeIdmappedMounts(problems);
        if (problems.Count == 0)
        {
            _roots.RemoveLeftovers();
            _layers.RemoveTemplates();
        }
        foreach (var problem in problems)
        {
            LogHostProblem(problem);
        }

        foreach (var warning in warnings)
        {
            LogHostProblem(warning);
        }

        foreach (var fix in repaired)
        {
            LogHostFixed(fix);
        }

        return new RuntimeCapabilities
        {
            Name = _options.Runtime,
            Available = problems.Count == 0,
            Version = version,
            Cgroups = _cgroups.Mode,
            Seccomp = seccomp,
            IdmappedMounts = idmapped,
            Lxcfs = lxcfs,
            Network = network,
            Snapshots = _pool.Reflinks,
            Problems = problems,
            Warnings = warnings,
            Fixed = repaired,
        };
    }

    /// <summary>Sets up the host's side of sandbox networks, keeping the slots (and policies) of sandboxes that
    /// outlived the server. A host that cannot (no nftables, a kernel without it) gives sandboxes loopback only,
    /// with a warning saying why.</summary>
    private async Task<bool> StartNetworkAsync(List<string> warnings, CancellationToken cancellationToken)
    {
        if (_network is not null)
        {
            return true;
        }

        IPNetwork subnet;
        IPAddress gateway;
        try
        {
            subnet = IPNetwork.Parse(_options.NetworkSubnet);
            gateway = IPAddress.Parse(_options.NetworkGateway);
        }
        catch (FormatException)
        {
            warnings.Add($"Runtime:NetworkSubnet ({_options.NetworkSubnet}) or Runtime:NetworkGateway ({_options.NetworkGateway}) is not an IPv4 network and address: sandboxes get loopback only.");
            return false;
        }

        var found = new Dictionary<string, NetworkRecord>(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories(_options.StateDirectory))
        {
            if (NetworkRecord.Load(dir) is { } record)
            {
                found[Path.GetFileName(dir)] = record;
            }
        }

        var addresses = 1 << (32 - subnet.PrefixLength);
        var host = new HostNetwork(
            new NetworkSettings(subnet, gateway, _options.NetworkProxyPort, _options.PreparedNetworks, Math.Min(_options.MaxSandboxes, addresses - 3), _options.NetworkStateDirectory,
                _options.PrepareOpenNetworks),
            Path.GetFullPath(_options.StateDirectory), _logger);
        if (await host.StartAsync(found.Values.ToDictionary(r => r.Slot, r => host.AddressOf(r.Slot)), cancellationToken) is { } problem)
        {
            warnings.Add(problem);
            host.Dispose();
            return false;
        }

        foreach (var (id, record) in found)
        {
            await host.AdoptAsync(record.Slot, record.Policy, cancellationToken);
            _slots[id] = record.Slot;
            _slotOwners[record.Slot] = id;
        }

        _network = host;
        return true;
    }

    /// <summary>
    /// Makes the state directory its own private mount (as container engines do with their storage): the
    /// mounts of sandboxes then never propagate into other mount namespaces of a host whose root is shared
    /// (systemd's default), and prepared layers can be moved into place (MS_MOVE refuses shared parents).
    /// </summary>
    private void MakeStateDirectoryPrivate(List<string> problems)
    {
        var dir = _options.StateDirectory;
        if (!Syscalls.IsMountPoint(dir))
        {
            if (Syscalls.MountsBelow(dir).Count > 0)
            {
                // Binding over live sandbox mounts would hide them: leave it until they are gone.
                LogTuningSkipped("the sandbox directory has live mounts and is not a private mount yet; it becomes one at a start with no sandboxes");
                return;
            }

            if (Syscalls.mount(dir, dir, null, Syscalls.MS_BIND, null) != 0)
            {
                problems.Add($"Could not make the sandbox directory a mount point ({Syscalls.LastError()}).");
                return;
            }
        }

        if (Syscalls.mount("none", dir, null, Syscalls.MS_PRIVATE | Syscalls.MS_REC, null) != 0)
        {
            problems.Add($"Could not make the sandbox directory a private mount ({Syscalls.LastError()}).");
        }
    }

    /// <summary>Idmaps a scratch directory once, so a kernel or file system without support is reported at
    /// start instead of failing every create.</summary>
    private bool ProbeIdmappedMounts(List<string> problems)
    {
        var scratch = Path.Combine(_options.StateDirectory, ".probe-" + Environment.ProcessId);
        var source = Path.Combine(scratch, "source");
        var target = Path.Combine(scratch, "target");
        Directory.CreateDirectory(source);
        Directory.CreateDirectory(target);
        var index = _ranges.Allocate();
        try
        {
            using (var userNamespace = _namespaces.LeaseRange(index))
            {
                IdmappedMount.Mount(source, target, userNamespace.Fd);
            }

            Syscalls.umount2(target, Syscalls.MNT_DETACH);
            return true;
        }
        catch (Exception ex) when (ex is IOException or SandboxRuntimeException)
        {
            problems.Add($"Idmapped mounts do not work on this host ({ex.Message}); Cordon needs Linux 5.12 or newer with the data directory on ext4, xfs, btrfs or tmpfs.");
            return false;
        }
        finally
        {
            _ranges.Release(index);
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>Counts the CPUs of a sandbox found at start (its config.json) in the placement of new ones.</summary>
    private void RestorePlacement(string dir)
    {
        try
        {
            var config = Path.Combine(dir, "config.json");
            if (!File.Exists(config))
            {
                return;
            }

            using var doc = JsonDocument.Parse(File.ReadAllBytes(config));
            if (doc.RootElement.TryGetProperty("linux", out var linux) && linux.TryGetProperty("resources", out var resources)
                && resources.TryGetProperty("cpu", out var cpu) && cpu.TryGetProperty("cpus", out var cpus)
                && cpu.TryGetProperty("quota", out var quota) && cpu.TryGetProperty("period", out var period) && period.GetInt64() > 0)
            {
                _cpus.Restore(Path.GetFileName(dir), cpus.GetString(), (double)quota.GetInt64() / period.GetInt64());
            }
        }
        catch (Exception ex) when (ex is IOException or JsonException or InvalidOperationException or FormatException)
        {
            // A half-written bundle of a crash: it is removed in the reconciliation.
        }
    }
}
