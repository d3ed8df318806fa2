using System.Text.Json;
using System.Text.Json.Nodes;
using Cordon.Runtime.Cgroups;

namespace Cordon.Runtime.Oci;

/// <summary>Writes the OCI <c>config.json</c> of one sandbox: every namespace, its own id range, seccomp,
/// a reduced capability set, no_new_privs, masked /proc and /sys paths, cgroup limits, and the agent as PID 1.</summary>
public static class OciBundleWriter
{
    /// <summary>Where the agent binary appears inside the sandbox.</summary>
    public const string AgentPathInSandbox = "/.cordon/agent";

    /// <summary>Tasks the pids cgroup allows beyond the sandbox's process limit, reserved for the agent's threads.</summary>
    public const int AgentProcessHeadroom = 32;

    /// <summary>
    /// Docker's default capabilities less NET_RAW (raw packets) and MKNOD (device nodes): enough to install
    /// packages, change users and bind low ports inside the sandbox's own namespaces.
    /// </summary>
    public static readonly IReadOnlyList<string> Capabilities =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP", "CAP_AUDIT_WRITE",
    ];

    private static readonly string[] MaskedPaths =
    [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
        "/proc/interrupts", "/sys/kernel",
    ];

    /// <summary>What a view of the host's /sys must not show a sandbox: the host's and other sandboxes' interfaces
    /// (names, addresses, counters), and the host's BPF and FUSE control file systems.</summary>
    private static readonly string[] HostSysMaskedPaths = ["/sys/class/net", "/sys/devices/virtual/net", "/sys/fs/bpf", "/sys/fs/fuse"];

    /// <summary>The masked paths that are directories on this host (they are in a sandbox too: the same kernel).</summary>
    private static readonly HashSet<string> MaskedDirectories = [.. MaskedPaths.Concat(HostSysMaskedPaths).Where(Directory.Exists)];

    private static readonly string[] ReadonlyPaths =
    [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ];

    /// <summary>Builds the config for <paramref name="spec"/>.</summary>
    /// <param name="hostIdBase">First host id of the sandbox's range; root inside maps to it.</param>
    /// <param name="seccompBpf">A precompiled filter (crun), or null to embed the JSON profile (runc).</param>
    /// <param name="cpuset">The host CPUs the sandbox may run on (<see cref="CpuPlacement"/>), or null for all.</param>
    /// <param name="networkNamespace">A prepared network namespace to join (<see cref="Network.HostNetwork"/>); a new
    /// one with loopback only when null.</param>
    /// <param name="volumes">Volumes' id-mapped mounts in the bundle, bound at their paths in the sandbox.</param>
    /// <param name="emptyDirectory">An empty, read-only host directory bound over the masked directories instead of a
    /// tmpfs each: every file system instance costs each memory cgroup on the host a slot in its shrinker map (the
    /// kernel's per-cgroup reclaim bookkeeping), so with thousands of sandboxes seven tmpfs per sandbox were
    /// ~200 KiB of kernel memory each (the runtime must allow binds under /proc: crun does, runc does not).</param>
    /// <param name="views">Files bind-mounted read-only over the sandbox's own (lxcfs's views of /proc and /sys):
    /// (host path, path in the sandbox).</param>
    public static JsonObject Build(SandboxSpec spec, OciRuntimeOptions options, CgroupHost cgroups, long hostIdBase, byte[]? seccompBpf,
        string? cpuset = null, IReadOnlyList<(string Source, string Destination)>? views = null, string? networkNamespace = null,
        IReadOnlyList<(string Source, string Destination, bool ReadOnly)>? volumes = null, string? emptyDirectory = null)
    {
        var masked = MaskedPaths.Concat(networkNamespace is null ? [] : HostSysMaskedPaths).ToList();
        var hidden = emptyDirectory is null ? [] : masked.Where(MaskedDirectories.Contains).ToList();
        var env = new JsonArray();
        foreach (var (key, value) in spec.Env)
        {
            // The agent's own settings are the runtime's to give (an image's ENV could name them too).
            if (!key.StartsWith("CORDON_AGENT_", StringComparison.Ordinal))
            {
                env.Add($"{key}={value}");
            }
        }

        env.Add("CORDON_AGENT_LISTEN_FD=3"); // the listening socket the runtime preserves for the agent
        env.Add($"CORDON_AGENT_USER={spec.User}");
        env.Add($"CORDON_AGENT_MAX_PROCESSES={spec.Limits.MaxProcesses}");
        env.Add($"CORDON_AGENT_CWD={spec.WorkingDir}");
        if (!spec.Env.ContainsKey("PATH"))
        {
            env.Add("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        }

        var caps = new JsonArray([.. Capabilities.Select(c => (JsonNode)c)]);
        var memoryBytes = spec.Limits.MemoryMiB * 1024 * 1024;
        var memory = new JsonObject { ["limit"] = memoryBytes };
        if (cgroups.SwapLimitSupported)
        {
            memory["swap"] = memoryBytes; // memory+swap = memory: no swap beyond the limit
        }

        var cpu = new JsonObject { ["quota"] = (long)Math.Round(spec.Limits.Cpus * 100_000), ["period"] = 100_000 };
        if (cpuset is not null)
        {
            cpu["cpus"] = cpuset;
        }

        var linux = new JsonObject
        {
            ["uidMappings"] = new JsonArray(new JsonObject { ["containerID"] = 0, ["hostID"] = hostIdBase, ["size"] = IdRangeAllocator.RangeSize }),
            ["gidMappings"] = new JsonArray(new JsonObject { ["containerID"] = 0, ["hostID"] = hostIdBase, ["size"] = IdRangeAllocator.RangeSize }),
            ["namespaces"] = new JsonArray([.. new[] { "pid", "network", "ipc", "uts", "mount", "user" }.Select(n => (JsonNode)(n == "network" && networkNamespace is not null
                ? new JsonObject { ["type"] = n, ["path"] = networkNamespace }
                : new JsonObject { ["type"] = n }))]),
            ["cgroupsPath"] = CgroupHost.CgroupsPath(options.CgroupParent, spec.Id),
            ["resources"] = new JsonObject
            {
                ["memory"] = memory,
                // Commands are held to MaxProcesses by RLIMIT_NPROC (set by the agent); the cgroup allows a few
                // more so a fork bomb can never starve the agent of the threads it needs to answer.
                ["pids"] = new JsonObject { ["limit"] = spec.Limits.MaxProcesses + AgentProcessHeadroom },
                ["cpu"] = cpu,
                ["devices"] = new JsonArray(new JsonObject { ["allow"] = false, ["access"] = "rwm" }),
            },
            ["maskedPaths"] = new JsonArray([.. masked.Except(hidden).Select(p => (JsonNode)p)]),
            ["readonlyPaths"] = new JsonArray([.. ReadonlyPaths.Select(p => (JsonNode)p)]),
        };
        var annotations = new JsonObject();
        if (seccompBpf is not null)
        {
            annotations["run.oci.seccomp_bpf_data"] = Convert.ToBase64String(seccompBpf);
        }
        else
        {
            linux["seccomp"] = SeccompCompiler.ToOciJson();
        }

        return new JsonObject
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = new JsonObject
            {
                ["terminal"] = false,
                ["user"] = new JsonObject { ["uid"] = 0, ["gid"] = 0 },
                ["args"] = new JsonArray(AgentPathInSandbox),
                ["env"] = env,
                ["cwd"] = "/",
                ["capabilities"] = new JsonObject
                {
                    ["bounding"] = caps.DeepClone(),
                    ["effective"] = caps.DeepClone(),
                    ["permitted"] = caps.DeepClone(),
                },
                ["noNewPrivileges"] = true,
                ["oomScoreAdj"] = 100,
            },
            ["root"] = new JsonObject { ["path"] = "rootfs", ["readonly"] = false },
            ["hostname"] = spec.Id,
            ["mounts"] = new JsonArray([
                Mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
                Mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
                Mount("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"),
                Mount("/dev/shm", "shm", "tmpfs", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
                Mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
                SysMount(networkNamespace is not null),
                Mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
                Mount("/run", "tmpfs", "tmpfs", "nosuid", "nodev", "mode=755", "size=65536k"),
                Mount(AgentPathInSandbox, options.AgentPath, "bind", "bind", "ro", "nosuid", "nodev"),

                .. (volumes ?? []).Select(v => Mount(v.Destination, v.Source, "bind", v.ReadOnly ? ["rbind", "ro", "nosuid", "nodev"] : ["rbind", "nosuid", "nodev"])),

                // After /proc and /sys, over their files and directories.
                .. (views ?? []).Select(v => Mount(v.Destination, v.Source, "bind", "bind", "ro", "nosuid", "nodev", "noexec")),
                .. hidden.Select(p => Mount(p, emptyDirectory!, "bind", "bind", "ro", "nosuid", "nodev", "noexec"))]),
            ["linux"] = linux,
            ["annotations"] = annotations,
        };
    }

    /// <summary>Writes config.json into the bundle directory, readable by root only: it holds the sandbox's whole
    /// environment, secrets included.</summary>
    public static void Write(string bundleDirectory, JsonObject config)
    {
        using var file = new FileStream(Path.Combine(bundleDirectory, "config.json"), new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = Modes.RootReadWrite,
        });
        JsonSerializer.Serialize(file, config);
    }

    /// <summary>/sys: a sysfs of its own, except in a network namespace the host made (its user namespace owns it,
    /// not the sandbox's, and the kernel lets only the owner mount sysfs there): then the host's, read-only, with
    /// <see cref="HostSysMaskedPaths"/> masked. A recursive bind: in a new user namespace the kernel refuses a bind
    /// that would uncover what the host mounted below.</summary>
    private static JsonObject SysMount(bool hostNetworkNamespace)
        => hostNetworkNamespace
            ? Mount("/sys", "/sys", "bind", "rbind", "ro", "nosuid", "noexec", "nodev")
            : Mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro");

    private static JsonObject Mount(string destination, string source, string type, params string[] options) => new()
    {
        ["destination"] = destination,
        ["type"] = type,
        ["source"] = source,
        ["options"] = new JsonArray([.. options.Select(o => (JsonNode)o)]),
    };
}
