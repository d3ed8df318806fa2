using Cordon.Runtime.Interop;

namespace Cordon.Runtime.Cgroups;

/// <summary>Knows how this host's cgroups are laid out (v1, v2 or hybrid), repairs the hybrid layout crun
/// refuses, and reads a sandbox's usage from its cgroup.</summary>
public sealed class CgroupHost
{
    private const string Root = "/sys/fs/cgroup";

    private CgroupHost(string mode) => Mode = mode;

    /// <summary><c>v2</c>, <c>v1</c> or <c>hybrid</c>.</summary>
    public string Mode { get; }

    public bool IsV2 => Mode == "v2";

    /// <summary>Memory+swap can be limited (so a sandbox cannot swap past its memory limit).</summary>
    public bool SwapLimitSupported => IsV2
        ? HasSwapInChildren()
        : File.Exists(Path.Combine(Root, "memory", "memory.memsw.limit_in_bytes"));

    public static CgroupHost Detect()
    {
        if (File.Exists(Path.Combine(Root, "cgroup.controllers")))
        {
            return new CgroupHost("v2");
        }

        return new CgroupHost(File.Exists(Path.Combine(Root, "unified", "cgroup.controllers")) ? "hybrid" : "v1");
    }

    /// <summary>
    /// On a hybrid host, controllers attached to the v2 hierarchy make crun refuse every container ("cgroups
    /// in hybrid mode not supported, drop all controllers from cgroupv2"). Mounting each such controller as a
    /// v1 hierarchy moves it off v2; this is what a host administrator would do, and it changes nothing for
    /// processes not in those (unused) v2 controllers.
    /// </summary>
    /// <returns>What was fixed, and the problems that remain with what to do about them.</returns>
    public (List<string> Fixed, List<string> Problems) RepairHybrid()
    {
        var repaired = new List<string>();
        var problems = new List<string>();
        if (Mode != "hybrid")
        {
            return (repaired, problems);
        }

        var controllers = File.ReadAllText(Path.Combine(Root, "unified", "cgroup.controllers"))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var controller in controllers)
        {
            var target = Path.Combine(Root, controller);
            try
            {
                Directory.CreateDirectory(target);
                if (Syscalls.mount("cgroup", target, "cgroup", Syscalls.MS_NOSUID | Syscalls.MS_NODEV, controller) != 0)
                {
                    problems.Add($"The cgroup controller '{controller}' sits on the v2 hierarchy of this hybrid host and could not be moved to v1 ({Syscalls.LastError()}); crun refuses such hosts. Run: mount -t cgroup -o {controller} cgroup {target}");
                    continue;
                }

                repaired.Add($"moved cgroup controller '{controller}' from the v2 to a v1 hierarchy (crun refuses hybrid hosts otherwise)");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                problems.Add($"Could not prepare {target} for the '{controller}' controller: {ex.Message}");
            }
        }

        return (repaired, problems);
    }

    /// <summary>
    /// Every sandbox start moves a process into new cgroups. That takes the kernel's global
    /// cgroup_threadgroup_rwsem for writing, which by default waits out an RCU grace period whenever the lock
    /// was idle: measured here, 18 ms of a 26 ms crun start. The cgroup2 mount option <c>favordynmods</c>
    /// (Linux 6.0+) makes such moves cheap at a small cost to fork and exit host-wide — the trade a host that
    /// creates containers all day wants. It applies to the one global lock, so setting it on the cgroup2
    /// mount also helps the v1 hierarchies of a hybrid host.
    /// </summary>
    /// <returns>What was changed, or null when nothing was needed or possible (the reason is in <paramref name="note"/>).</returns>
    public static string? FavorDynamicModifications(out string? note)
    {
        note = null;
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            // ... mount-point options - fstype source super-options
            var separator = line.IndexOf(" - ", StringComparison.Ordinal);
            if (separator < 0)
            {
                continue;
            }

            var tail = line[(separator + 3)..].Split(' ');
            if (tail.Length < 3 || tail[0] != "cgroup2")
            {
                continue;
            }

            var fields = line[..separator].Split(' ');
            var target = fields[4];
            var options = tail[2].Split(',').Where(o => o is not ("rw" or "ro")).ToList();
            if (options.Contains("favordynmods"))
            {
                return null;
            }

            // A remount resets what it is not given: the cgroup2 options (nsdelegate …) and the mount's own
            // flags (nosuid, nodev, noexec … that hardened hosts set) are both passed again as they are.
            options.Add("favordynmods");
            if (Syscalls.mount("cgroup2", target, "cgroup2", MsRemount | MountFlags(fields[5]), string.Join(',', options)) != 0)
            {
                note = $"could not set favordynmods on {target} ({Syscalls.LastError()}; needs Linux 6.0+): sandbox starts pay an extra RCU grace period";
                return null;
            }

            return $"set favordynmods on {target}: moving sandbox processes into their cgroups no longer waits for an RCU grace period";
        }

        note = "no cgroup2 mount to set favordynmods on";
        return null;
    }

    private const ulong MsRemount = 32;

    /// <summary>The per-mount flags of a mountinfo options field ("rw,nosuid,nodev,noexec,relatime").</summary>
    internal static ulong MountFlags(string options)
    {
        ulong flags = 0;
        foreach (var option in options.Split(','))
        {
            flags |= option switch
            {
                "ro" => 1UL,
                "nosuid" => 2UL,
                "nodev" => 4UL,
                "noexec" => 8UL,
                "noatime" => 1024UL,
                "nodiratime" => 2048UL,
                "relatime" => 1UL << 21,
                "strictatime" => 1UL << 24,
                _ => 0UL,
            };
        }

        return flags;
    }

    /// <summary>The OCI cgroupsPath for a sandbox.</summary>
    public static string CgroupsPath(string parent, string id) => $"/{parent.Trim('/')}/{id}";

    /// <summary>Reads memory, process and CPU use of a sandbox's cgroup; null when it has none.</summary>
    public SandboxUsage? ReadUsage(string parent, string id)
    {
        var relative = CgroupsPath(parent, id).TrimStart('/');
        try
        {
            if (IsV2)
            {
                var dir = Path.Combine(Root, relative);
                if (!Directory.Exists(dir))
                {
                    return null;
                }

                var usage = ReadLong(Path.Combine(dir, "cpu.stat"), "usage_usec");
                return new SandboxUsage(ReadLong(Path.Combine(dir, "memory.current")), ReadLong(Path.Combine(dir, "memory.max")),
                    (int)ReadLong(Path.Combine(dir, "pids.current")), usage / 1e6);
            }

            var memory = Path.Combine(Root, "memory", relative);
            if (!Directory.Exists(memory))
            {
                return null;
            }

            return new SandboxUsage(
                ReadLong(Path.Combine(memory, "memory.usage_in_bytes")),
                ReadLong(Path.Combine(memory, "memory.limit_in_bytes")),
                (int)ReadLong(Path.Combine(Root, "pids", relative, "pids.current")),
                ReadLong(Path.Combine(Root, "cpuacct", relative, "cpuacct.usage")) / 1e9);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The host pids of the processes in a sandbox's cgroup (empty when it has none).</summary>
    public IReadOnlyList<int> ProcessIds(string parent, string id)
    {
        var relative = CgroupsPath(parent, id).TrimStart('/');
        var file = IsV2 ? Path.Combine(Root, relative, "cgroup.procs") : Path.Combine(Root, "pids", relative, "cgroup.procs");
        try
        {
            return [.. File.ReadAllLines(file).Where(l => l.Length > 0).Select(int.Parse)];
        }
        catch (IOException)
        {
            return [];
        }
    }

    /// <summary>Whether every process of the sandbox's cgroup is frozen (v1 <c>freezer.state</c> FROZEN, not the
    /// transient FREEZING; v2 <c>cgroup.events</c> <c>frozen 1</c>); true when there is nothing to tell.</summary>
    public bool IsFrozen(string parent, string id)
    {
        var relative = CgroupsPath(parent, id).TrimStart('/');
        try
        {
            return IsV2
                ? File.ReadAllLines(Path.Combine(Root, relative, "cgroup.events")).Contains("frozen 1")
                : File.ReadAllText(Path.Combine(Root, "freezer", relative, "freezer.state")).Trim() == "FROZEN";
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>Asks the freezer to stop every process of the sandbox's cgroup (they stop at their next safe point:
    /// see <see cref="IsFrozen"/>).</summary>
    /// <returns>False when there is no such cgroup or no freezer.</returns>
    public bool Freeze(string parent, string id) => WriteFreezer(parent, id, freeze: true);

    /// <summary>Thaws a paused sandbox's cgroup, if it is frozen: a frozen process does not die of SIGKILL until it
    /// is thawed (on cgroup v1 not at all), so stopping a paused sandbox kills, then thaws.</summary>
    public void Thaw(string parent, string id) => WriteFreezer(parent, id, freeze: false);

    private bool WriteFreezer(string parent, string id, bool freeze)
    {
        var relative = CgroupsPath(parent, id).TrimStart('/');
        var (file, state) = IsV2
            ? (Path.Combine(Root, relative, "cgroup.freeze"), freeze ? "1" : "0")
            : (Path.Combine(Root, "freezer", relative, "freezer.state"), freeze ? "FROZEN" : "THAWED");
        try
        {
            File.WriteAllText(file, state);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false; // no cgroup (already removed) or no freezer: nothing is frozen
        }
    }

    /// <summary>Moves a host helper process (lxcfs) into <c>{parent}/{name}</c> of the hierarchies service managers
    /// track processes by (the v2 tree, or systemd's named v1 hierarchy), so stopping the server's service does
    /// not stop a helper that sandboxes still need. Best effort: where it cannot move, the helper stays where it
    /// was started.</summary>
    public void MoveToOwnCgroup(string parent, string name, int pid)
    {
        string[] roots = IsV2 ? [Root] : [Path.Combine(Root, "unified"), Path.Combine(Root, "systemd")];
        foreach (var root in roots.Where(r => File.Exists(Path.Combine(r, "cgroup.procs"))))
        {
            try
            {
                var dir = Path.Combine(root, parent.Trim('/'), name);
                Directory.CreateDirectory(dir);
                File.WriteAllText(Path.Combine(dir, "cgroup.procs"), pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    /// <summary>Removes a sandbox cgroup left behind (crun removes its own on delete; a crash may not).</summary>
    public void RemoveLeftovers(string parent, string id)
    {
        var relative = CgroupsPath(parent, id).TrimStart('/');
        var dirs = IsV2
            ? [Path.Combine(Root, relative)]
            : Directory.EnumerateDirectories(Root).Select(c => Path.Combine(c, relative));
        foreach (var dir in dirs)
        {
            try
            {
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir); // cgroup directories are removed with rmdir, never recursively
                }
            }
            catch (IOException)
            {
            }
        }
    }

    private static bool HasSwapInChildren()
    {
        foreach (var dir in Directory.EnumerateDirectories(Root))
        {
            if (File.Exists(Path.Combine(dir, "memory.swap.max")))
            {
                return true;
            }
        }

        return false;
    }

    private static long ReadLong(string file, string? key = null)
    {
        if (!File.Exists(file))
        {
            return 0;
        }

        var text = File.ReadAllText(file).Trim();
        if (key is not null)
        {
            var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(key + " ", StringComparison.Ordinal));
            text = line?[(key.Length + 1)..] ?? "0";
        }

        return text == "max" ? long.MaxValue : long.TryParse(text, out var value) ? value : 0;
    }
}
