namespace Cordon.Runtime;

/// <summary>Drives one isolation technology on behalf of the sandbox service.</summary>
/// <remarks>An implementation owns every host resource it creates for a sandbox and releases all of
/// them in <see cref="DestroyAsync"/>, also after a creation that failed halfway. Sandboxes outlive the
/// server: <see cref="ListAsync"/> reports what really exists so a new server can adopt or remove it.</remarks>
public interface ISandboxRuntime
{
    /// <summary>The runtime's name as users select it (<c>crun</c>, <c>runc</c> …).</summary>
    string Name { get; }

    /// <summary>Checks (once) what the host supports, fixing what can be fixed, and reports it.</summary>
    ValueTask<RuntimeCapabilities> ProbeAsync(CancellationToken cancellationToken);

    /// <summary>Creates and starts a sandbox; returns once its agent is starting and connections to it are
    /// accepted (they wait until it serves them, a few ms later).</summary>
    /// <exception cref="SandboxRuntimeException">The runtime refused; nothing of the sandbox is left behind.</exception>
    ValueTask CreateAsync(SandboxSpec spec, CancellationToken cancellationToken);

    /// <summary>Freezes every process of the sandbox where it stands.</summary>
    ValueTask PauseAsync(string id, CancellationToken cancellationToken);

    /// <summary>Thaws a paused sandbox.</summary>
    ValueTask ResumeAsync(string id, CancellationToken cancellationToken);

    /// <summary>Kills every process of the sandbox and returns once they are all gone. Its host resources stay
    /// until <see cref="DestroyAsync"/>. Idempotent.</summary>
    ValueTask StopAsync(string id, CancellationToken cancellationToken);

    /// <summary>Ends every process of the sandbox and keeps everything else — its file system, its network
    /// (namespace, address, policy), its id range — for <see cref="StartAsync"/>. Idempotent.</summary>
    ValueTask SuspendAsync(string id, CancellationToken cancellationToken);

    /// <summary>Starts a sandbox whose processes were stopped (<see cref="SuspendAsync"/> or <see cref="StopAsync"/>) again, in the file system it
    /// kept, with a fresh agent; returns as <see cref="CreateAsync"/> does.</summary>
    /// <exception cref="SandboxRuntimeException">Its files are gone (a host reboot unmounted them) or the runtime refused.</exception>
    ValueTask StartAsync(string id, CancellationToken cancellationToken);

    /// <summary>Saves the sandbox's writable layer as snapshot <paramref name="snapshotId"/>, consistent (its file
    /// system frozen for the instant the clone takes) and without copying data, while it runs, is paused or stopped.
    /// A sandbox created with the snapshot in <see cref="SandboxSpec.Snapshots"/> starts from that file system.</summary>
    /// <exception cref="SandboxRuntimeException">This host cannot clone (see <see cref="RuntimeCapabilities.Snapshots"/>)
    /// or the sandbox does not exist; nothing is left behind.</exception>
    ValueTask SnapshotAsync(string id, string snapshotId, CancellationToken cancellationToken);

    /// <summary>Removes a snapshot's files. Idempotent; the caller makes sure no sandbox uses it.</summary>
    ValueTask DeleteSnapshotAsync(string snapshotId, CancellationToken cancellationToken);

    /// <summary>The snapshots found on the host (for reconciling them with the server's records).</summary>
    IReadOnlyList<string> ListSnapshots();

    /// <summary>Creates a volume: its own file system of <paramref name="sizeMiB"/>, outliving every sandbox.</summary>
    ValueTask CreateVolumeAsync(string volumeId, long sizeMiB, CancellationToken cancellationToken);

    /// <summary>Removes a volume and its files. Idempotent; the caller makes sure no sandbox mounts it.</summary>
    ValueTask DeleteVolumeAsync(string volumeId, CancellationToken cancellationToken);

    /// <summary>The volumes found on the host (for reconciling them with the server's records).</summary>
    IReadOnlyList<string> ListVolumes();

    /// <summary>The volume's files, for the server's file API.</summary>
    Interop.VolumeFiles VolumeFiles(string volumeId);

    /// <summary>Kills every process and releases every host resource of the sandbox. Idempotent.</summary>
    ValueTask DestroyAsync(string id, CancellationToken cancellationToken);

    /// <summary>Every sandbox this runtime finds on the host, running or left over.</summary>
    ValueTask<IReadOnlyList<RuntimeSandbox>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Opens a connection to the sandbox's agent.</summary>
    ValueTask<Stream> ConnectAgentAsync(string id, CancellationToken cancellationToken);

    /// <summary>Current resource use, or null when the sandbox does not exist.</summary>
    ValueTask<SandboxUsage?> GetUsageAsync(string id, CancellationToken cancellationToken);

    /// <summary>Replaces what a running sandbox's traffic may reach; connections the new policy forbids are cut.</summary>
    /// <exception cref="SandboxRuntimeException">The sandbox does not exist, or the host gives sandboxes no network.</exception>
    ValueTask SetNetworkAsync(string id, Network.SandboxNetwork network, CancellationToken cancellationToken);

    /// <summary>Packets the kernel refused to the sandbox so far, by the rule that refused them (its words); empty
    /// without a network. Counters restart when the policy changes.</summary>
    ValueTask<IReadOnlyDictionary<string, long>> NetworkRefusalsAsync(string id, CancellationToken cancellationToken);

    /// <summary>Sandboxes get a network of their own here (else loopback only, whatever their policy).</summary>
    bool HasNetwork { get; }

    /// <summary>Where this server's resolver and proxy for its sandboxes listen (null without a network).</summary>
    System.Net.IPAddress? ServiceAddress { get; }

    /// <summary>The sandbox's address, or null when it has none (no network on this host, or no such sandbox).</summary>
    System.Net.IPAddress? AddressOf(string id);

    /// <summary>The sandbox with this address, or null.</summary>
    string? SandboxAt(System.Net.IPAddress address);

    /// <summary>Disk free on the sandboxes' file system and what their writable layers take of it (a moment old
    /// at most: it is read at most every few seconds).</summary>
    DiskSpace GetDiskSpace();

    /// <summary>Raised, on a runtime thread, with the id of a sandbox whose processes ended without
    /// <see cref="StopAsync"/> or <see cref="DestroyAsync"/>: its agent exited or was killed. Watched are the
    /// sandboxes this runtime created and those <see cref="ListAsync"/> found running or paused.</summary>
    event Action<string>? SandboxExited;
}
