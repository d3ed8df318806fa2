namespace Cordon.Server.Sandboxes;

/// <summary>What a create asks for; every interface maps its own request onto this. Null means the server's
/// default.</summary>
public sealed record NewSandbox
{
    public string? Image { get; init; }

    /// <summary>A snapshot (id or name) to start from instead of an image: the sandbox sees the file system it saved.</summary>
    public string? Snapshot { get; init; }

    /// <summary>Volumes (by id or name) to mount, each at an absolute path.</summary>
    public IReadOnlyList<SandboxVolume>? Volumes { get; init; }

    /// <summary>Its timers; the server's defaults when null.</summary>
    public SandboxTimers? Timers { get; init; }

    public double? Cpu { get; init; }

    public long? MemoryMiB { get; init; }

    public long? DiskMiB { get; init; }

    public int? MaxProcesses { get; init; }

    public int? TimeoutSeconds { get; init; }

    /// <summary>Environment every process in the sandbox starts with, over the image's.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>The sandbox's web ports may be reached without a credential through E2B's sandbox addressing
    /// (<c>{port}-{id}.domain</c>, the <c>E2b-Sandbox-Id</c> header), as E2B's <c>allowPublicTraffic</c>. Off by
    /// default: then they need the sandbox's traffic token (or go through the REST port route with an API key).</summary>
    public bool PublicPorts { get; init; }

    /// <summary>The image a build runs its steps in this sandbox for (recorded as its <c>cordon.build</c> metadata, which
    /// no caller can set); null for any other sandbox.</summary>
    internal string? BuildOf { get; init; }

    /// <summary>What its traffic may reach; the server's default (<see cref="CordonOptions.DefaultNetwork"/>) when null.</summary>
    public Network.EgressPolicy? Network { get; init; }

    /// <summary>Secrets the sandbox may use, by the environment variable that holds each one's placeholder.</summary>
    public IReadOnlyDictionary<string, string>? Secrets { get; init; }
}
