namespace Cordon.Protocol.Api;

/// <summary>Body of <c>POST /v1/sandboxes</c>. Every field is optional.</summary>
public sealed record CreateSandboxRequest
{
    /// <summary>Image name; the server's default image when null.</summary>
    public string? Image { get; init; }

    /// <summary>A snapshot (id or name) to start from instead of an image.</summary>
    public string? Snapshot { get; init; }

    /// <summary>Volumes to mount (each by name or id, at an absolute path).</summary>
    public IReadOnlyList<VolumeMountInfo>? VolumeMounts { get; init; }

    /// <summary>Its timers (timeout action, idle timer, autoResume, retention once stopped).</summary>
    public SandboxTimersInfo? Timers { get; init; }

    /// <summary>CPU cores (fractions allowed); default 1.</summary>
    public double? Cpu { get; init; }

    /// <summary>Memory limit in MiB; default 512.</summary>
    public long? MemoryMiB { get; init; }

    /// <summary>Size of the sandbox's writable layer in MiB; default 2048.</summary>
    public long? DiskMiB { get; init; }

    /// <summary>Most processes the sandbox may run at once; default 256.</summary>
    public int? MaxProcesses { get; init; }

    /// <summary>Seconds until the sandbox is destroyed (extendable); default 300.</summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>Environment variables of every process in the sandbox.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }

    /// <summary>Free-form labels, returned as given and usable as list filters (at most 64; <c>cordon.build</c> is the
    /// server's own).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Let anyone who knows the sandbox's id reach its web ports at <c>{port}-{id}.{domain}</c> without a
    /// credential (as E2B's <c>allowPublicTraffic</c>); default false: they then need the sandbox's traffic token in
    /// <c>E2B-Traffic-Access-Token</c>, or an API key on <c>/v1/sandboxes/{id}/ports/{port}/</c>.</summary>
    public bool? PublicPorts { get; init; }

    /// <summary>What the sandbox's traffic may reach; the server's default (the public internet unless its operator
    /// chose <c>none</c>) when omitted. Changeable while it runs: <c>PUT /v1/sandboxes/{id}/network</c>.</summary>
    public NetworkPolicy? Network { get; init; }

    /// <summary>Secrets the sandbox may use, by the environment variable that holds each one's placeholder
    /// (<c>{"OPENAI_API_KEY": "openai"}</c>). The sandbox never holds a secret's value: the server's proxy puts it in
    /// place of the placeholder in request headers on HTTPS connections to the secret's hosts only.</summary>
    public IReadOnlyDictionary<string, string>? Secrets { get; init; }
}
