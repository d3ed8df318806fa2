namespace Cordon.Runtime.Oci;

/// <summary>Settings of the OCI driver (section <c>Runtime</c>); every one is listed in docs/configuration.md.</summary>
public sealed class OciRuntimeOptions
{
    /// <summary><c>crun</c> (default) or <c>runc</c>: the OCI runtime program to drive.</summary>
    public string Runtime { get; set; } = "crun";

    /// <summary>Absolute path of the runtime program. When empty: <see cref="BundledRuntimePath"/> while it is a
    /// static twin of the installed runtime, else <c>/usr/bin/{Runtime}</c> (see <see cref="RuntimeProgram"/>).</summary>
    public string? RuntimePath { get; set; }

    /// <summary>Where a static build of the runtime may sit beside the server (made by tools/static-crun). Set by
    /// the server to <c>{install directory}/{Runtime}</c>.</summary>
    public string? BundledRuntimePath { get; set; }

    /// <summary>Where each sandbox's bundle, mounts and agent socket live. Set by the server to <c>{DataDir}/sandboxes</c>.</summary>
    public string StateDirectory { get; set; } = "/var/lib/cordon/sandboxes";

    /// <summary>Size of the sparse XFS pool that holds <see cref="StateDirectory"/> when the host's file system cannot
    /// clone files (see <see cref="LayerPool"/>); 0 sizes it as the host's file system (at least 16 GiB, at most 4 TiB).
    /// Only space written takes room on the host.</summary>
    public long PoolSizeGiB { get; set; }

    /// <summary>The runtime's own state directory (its <c>--root</c>), so <c>list</c> shows only Cordon's sandboxes.</summary>
    public string RuntimeRoot { get; set; } = "/run/cordon/runtime";

    /// <summary>The cgroup under which every sandbox gets its own (<c>{CgroupParent}/{id}</c>).</summary>
    public string CgroupParent { get; set; } = "cordon";

    /// <summary>Absolute path of the static cordon-agent binary that becomes PID 1 of every sandbox.</summary>
    public string AgentPath { get; set; } = "";

    /// <summary>First host uid/gid of the ranges given to sandboxes; each sandbox gets its own 65536 ids.</summary>
    public long IdRangeStart { get; set; } = 1L << 30;

    /// <summary>Where every server on the host claims the id ranges it hands out, so two servers (two data
    /// directories) never give sandboxes the same host ids.</summary>
    public string IdRangeClaims { get; set; } = "/run/cordon/id-ranges";

    /// <summary>Most sandboxes that may exist at once (one id range each).</summary>
    public int MaxSandboxes { get; set; } = 4096;

    /// <summary>Set the cgroup2 mount option favordynmods at start (Linux 6.0+), which makes every sandbox start
    /// ~10 ms faster at a small cost to fork and exit on the host. See CgroupHost.FavorDynamicModifications.</summary>
    public bool FavorDynamicCgroups { get; set; } = true;

    /// <summary>Empty sandbox roots (id range, writable layer, id-mapped image, overlay — no processes) kept ready
    /// per image and disk size that creates asked for. 0 builds each root during create instead (~3–5 ms slower).</summary>
    public int PreparedRoots { get; set; } = 2;

    /// <summary>For how many kinds (image, disk size), the ones creates asked for most recently, roots are kept
    /// ready; a kind beyond them is dropped and its roots released.</summary>
    public int PreparedRootKinds { get; set; } = 4;

    /// <summary>Serve each sandbox its own view of <c>/proc/meminfo</c>, <c>/proc/cpuinfo</c>, <c>/proc/stat</c>,
    /// <c>/proc/loadavg</c>, <c>/proc/uptime</c>, <c>/proc/swaps</c> and <c>/proc/diskstats</c> through lxcfs (see
    /// <see cref="Cgroups.LxcfsHost"/>).</summary>
    public bool Lxcfs { get; set; } = true;

    /// <summary>Absolute path of the lxcfs program.</summary>
    public string LxcfsPath { get; set; } = "/usr/bin/lxcfs";

    /// <summary>Where the host's lxcfs instance for Cordon is mounted; shared by every Cordon server on the host.</summary>
    public string LxcfsMountPoint { get; set; } = "/run/cordon/lxcfs";

    /// <summary>Pin each sandbox to <c>ceil(cpu)</c> host CPUs (the least loaded), so programs that count the CPUs
    /// they may run on see its limit (see <see cref="Cgroups.CpuPlacement"/>).</summary>
    public bool PinCpus { get; set; } = true;

    /// <summary>Give sandboxes a network of their own (a namespace with a routed veth, Cordon's nftables table,
    /// the server's resolver and proxy); when off, or when the host cannot (no nftables), sandboxes have loopback
    /// only.</summary>
    public bool Network { get; set; } = true;

    /// <summary>Sandboxes' addresses, one each; masqueraded on the way out. Pick a range the host's own networks
    /// do not use.</summary>
    public string NetworkSubnet { get; set; } = "10.201.0.0/16";

    /// <summary>The sandboxes' gateway on the host (an address on the host's <c>lo</c>, labelled <c>lo:cordon</c>): their resolver and
    /// the proxy for name rules listen there.</summary>
    public string NetworkGateway { get; set; } = "169.254.201.1";

    /// <summary>The port of the server's proxy for name rules, on the gateway.</summary>
    public int NetworkProxyPort { get; set; } = 15080;

    /// <summary>Prepared namespaces come with the public-internet policy already in force (the server's default
    /// policy), so the most common create applies nothing; a create asking for another policy applies its own.
    /// Set from <c>Cordon:DefaultNetwork</c>.</summary>
    public bool PrepareOpenNetworks { get; set; } = true;

    /// <summary>Network namespaces kept ready for creates.</summary>
    public int PreparedNetworks { get; set; } = 4;

    /// <summary>Where Cordon remembers what it changed on the host's network (under /run: it ends with the boot).</summary>
    public string NetworkStateDirectory { get; set; } = "/run/cordon/network";
}
