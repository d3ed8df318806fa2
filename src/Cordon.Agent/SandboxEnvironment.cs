namespace Cordon.Agent;

/// <summary>The sandbox-wide settings the agent was started with: the base environment every command
/// inherits (the image's and the sandbox's variables) and the default user.</summary>
/// <remarks>Variables named <c>CORDON_AGENT_*</c> configure the agent itself and never reach commands.</remarks>
internal sealed class SandboxEnvironment
{
    public const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    private const string AgentPrefix = "CORDON_AGENT_";

    /// <summary>Replaced whole, never changed in place: commands read it while a configure may set it.</summary>
    private volatile Dictionary<string, string> _base;

    public SandboxEnvironment()
    {
        _base = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => (Key: (string)e.Key, Value: (string?)e.Value ?? ""))
            .Where(e => !e.Key.StartsWith(AgentPrefix, StringComparison.Ordinal))
            .ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
        _base.TryAdd("PATH", DefaultPath);

        var socket = Environment.GetEnvironmentVariable(AgentPrefix + "SOCKET");
        SocketPath = string.IsNullOrEmpty(socket) ? "/run/cordon-agent.sock" : socket;
        WorkingDir = Environment.GetEnvironmentVariable(AgentPrefix + "CWD") is { Length: > 1 } cwd ? cwd : null;
        MaxProcesses = int.TryParse(Environment.GetEnvironmentVariable(AgentPrefix + "MAX_PROCESSES"), out var max) && max > 0 ? max : null;
        ListenFd = int.TryParse(Environment.GetEnvironmentVariable(AgentPrefix + "LISTEN_FD"), out var fd) ? fd : null;
        DefaultUserSpec = Environment.GetEnvironmentVariable(AgentPrefix + "USER") is { Length: > 0 } u ? u : "root";

        // Only the agent's own copy: commands get theirs from BuildEnvironment.
        foreach (var key in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => k.StartsWith(AgentPrefix, StringComparison.Ordinal)))
        {
            Environment.SetEnvironmentVariable(key, null);
        }
    }

    /// <summary>Where to listen when no socket was handed over (running the agent by hand).</summary>
    public string SocketPath { get; }

    /// <summary>A listening socket the runtime handed over (the normal case): bound on the host, outside the sandbox.</summary>
    public int? ListenFd { get; }

    public string DefaultUserSpec { get; }

    /// <summary>The image's working directory, when it sets one; otherwise commands start in the user's home.</summary>
    public string? WorkingDir { get; }

    /// <summary>RLIMIT_NPROC for every command: the sandbox's process limit. The pids cgroup is a little larger,
    /// so the agent (not limited) can always start the threads it needs.</summary>
    public int? MaxProcesses { get; }

    /// <summary>The default user, resolved on each use: commands may create users after the sandbox starts.</summary>
    public UserIdentity? DefaultUser => DefaultUserSpec == "root" ? UserIdentity.Root : UserIdentity.Resolve(DefaultUserSpec);

    /// <summary>Adds or replaces variables every later command inherits.</summary>
    public void Apply(IReadOnlyDictionary<string, string> env)
    {
        var updated = new Dictionary<string, string>(_base, StringComparer.Ordinal);
        foreach (var (name, value) in env.Where(e => !e.Key.StartsWith(AgentPrefix, StringComparison.Ordinal)))
        {
            updated[name] = value;
        }

        _base = updated;
    }

    public List<string> BuildEnvironment(UserIdentity user, IReadOnlyDictionary<string, string>? overrides)
    {
        var env = new Dictionary<string, string>(_base, StringComparer.Ordinal)
        {
            ["HOME"] = user.Home,
            ["USER"] = user.Name,
            ["LOGNAME"] = user.Name,
        };
        if (overrides is not null)
        {
            foreach (var (key, value) in overrides)
            {
                env[key] = value;
            }
        }

        return env.Select(e => $"{e.Key}={e.Value}").ToList();
    }
}
