namespace Cordon.Testing;

/// <summary>A sandbox's processes as the host sees them (tests read what the sandbox may not).</summary>
public static class HostProcesses
{
    /// <summary>Host pids in the sandbox's cgroup.</summary>
    public static IReadOnlyList<int> Of(string sandboxId)
    {
        var procs = new[] { $"/sys/fs/cgroup/pids/cordon/{sandboxId}/cgroup.procs", $"/sys/fs/cgroup/cordon/{sandboxId}/cgroup.procs" }.First(File.Exists);
        return [.. File.ReadAllLines(procs).Where(l => l.Length > 0).Select(int.Parse)];
    }

    /// <summary>The host pid of the sandbox's agent: the process whose command line is the agent's path in the sandbox.</summary>
    public static int AgentOf(string sandboxId)
        => Of(sandboxId).First(pid => File.ReadAllText($"/proc/{pid}/cmdline").StartsWith("/.cordon/agent", StringComparison.Ordinal));
}
