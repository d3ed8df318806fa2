using System.CommandLine;
using Cordon.Protocol.Api;

namespace Cordon.Cli;

/// <summary>The options that describe a new sandbox, shared by <c>run</c> and <c>sandbox create</c>.</summary>
internal sealed class SandboxOptions
{
    public Option<string?> Image { get; } = new("--image", "-i") { Description = "Image name (default: the server's default image)." };

    public Option<double?> Cpu { get; } = new("--cpu") { Description = "CPU cores." };

    public Option<long?> Memory { get; } = new("--memory") { Description = "Memory limit in MiB." };

    public Option<long?> Disk { get; } = new("--disk") { Description = "Writable layer size in MiB." };

    public Option<int?> Timeout { get; } = new("--timeout") { Description = "Sandbox lifetime in seconds." };

    public Option<string?> Snapshot { get; } = new("--snapshot") { Description = "Start from this snapshot (id or name) instead of an image." };

    public Option<string[]> Volumes { get; } = new("--volume", "-v")
    {
        Description = "NAME:/path[:ro]: mount volume NAME at /path (repeatable).",
        AllowMultipleArgumentsPerToken = false,
    };

    public Option<int?> Idle { get; } = new("--idle") { Description = "Seconds without a request, command or connection before --on-idle happens." };

    public Option<string?> OnIdle { get; } = new("--on-idle") { Description = "What idleness does: pause (default), stop or destroy." };

    public Option<string?> OnTimeout { get; } = new("--on-timeout") { Description = "What the timeout does: destroy (default), pause or stop." };

    public Option<bool> AutoResume { get; } = new("--auto-resume") { Description = "Any request to it while paused or stopped brings it back." };

    public Option<string[]> Env { get; } = new("--env", "-e") { Description = "KEY=VALUE environment variable (repeatable).", AllowMultipleArgumentsPerToken = false };

    public Option<string?> Network { get; } = new("--network")
    {
        Description = "internet (the public internet) or none (nothing leaves the sandbox; --allow rules still do). Default: the server's.",
        CustomParser = r => r.Tokens[0].Value is "internet" or "none" ? r.Tokens[0].Value : Fail(r, "--network is internet or none."),
    };

    public Option<string[]> Allow { get; } = new("--allow")
    {
        Description = "Allow an address, CIDR range or domain (pypi.org, *.github.com), optionally :port (repeatable). Without --network, only what is allowed.",
        AllowMultipleArgumentsPerToken = false,
    };

    public Option<string[]> Deny { get; } = new("--deny") { Description = "Deny an address, CIDR range or domain, optionally :port (repeatable).", AllowMultipleArgumentsPerToken = false };

    public Option<string[]> Secrets { get; } = new("--secret")
    {
        Description = "VAR=NAME: the sandbox may use secret NAME; VAR holds its placeholder, which the proxy replaces in HTTPS request headers to the secret's hosts (repeatable).",
        AllowMultipleArgumentsPerToken = false,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Secrets);
        command.Options.Add(Network);
        command.Options.Add(Allow);
        command.Options.Add(Deny);
        command.Options.Add(Image);
        command.Options.Add(Cpu);
        command.Options.Add(Memory);
        command.Options.Add(Disk);
        command.Options.Add(Timeout);
        command.Options.Add(Env);
        command.Options.Add(Snapshot);
        command.Options.Add(Volumes);
        command.Options.Add(Idle);
        command.Options.Add(OnIdle);
        command.Options.Add(OnTimeout);
        command.Options.Add(AutoResume);
    }

    public CreateSandboxRequest ToRequest(ParseResult parse) => new()
    {
        Image = parse.GetValue(Image),
        Cpu = parse.GetValue(Cpu),
        MemoryMiB = parse.GetValue(Memory),
        DiskMiB = parse.GetValue(Disk),
        TimeoutSeconds = parse.GetValue(Timeout),
        Env = CliOutput.ParsePairs(parse.GetValue(Env), "--env"),
        Network = ToPolicy(parse),
        Secrets = CliOutput.ParsePairs(parse.GetValue(Secrets), "--secret"),
        Snapshot = parse.GetValue(Snapshot),
        VolumeMounts = parse.GetValue(Volumes) is { Length: > 0 } volumes ? [.. volumes.Select(ParseVolume)] : null,
        Timers = parse.GetValue(Idle) is null && parse.GetValue(OnIdle) is null && parse.GetValue(OnTimeout) is null && !parse.GetValue(AutoResume)
            ? null
            : new SandboxTimersInfo
            {
                IdleTimeoutSeconds = parse.GetValue(Idle),
                OnIdle = parse.GetValue(OnIdle),
                OnTimeout = parse.GetValue(OnTimeout),
                AutoResume = parse.GetValue(AutoResume),
            },
    };

    /// <summary>The network flags as a policy, or null for the server's default. --allow alone means only that.</summary>
    public NetworkPolicy? ToPolicy(ParseResult parse)
    {
        var network = parse.GetValue(Network);
        var allow = parse.GetValue(Allow) ?? [];
        var deny = parse.GetValue(Deny) ?? [];
        if (network is null && allow.Length == 0 && deny.Length == 0)
        {
            return null;
        }

        return new NetworkPolicy
        {
            Internet = network is null ? (allow.Length > 0 ? false : null) : network == "internet",
            AllowOut = allow,
            DenyOut = deny,
        };
    }

    private static VolumeMountInfo ParseVolume(string text)
    {
        var parts = text.Split(':');
        return parts.Length is 2 or 3 && parts[0].Length > 0 && parts[1].StartsWith('/') && (parts.Length == 2 || parts[2] is "ro" or "rw")
            ? new VolumeMountInfo { Name = parts[0], Path = parts[1], ReadOnly = parts.Length == 3 && parts[2] == "ro" }
            : throw new ArgumentException($"--volume '{text}' is not NAME:/path or NAME:/path:ro.");
    }

    private static string? Fail(System.CommandLine.Parsing.ArgumentResult result, string message)
    {
        result.AddError(message);
        return null;
    }
}
