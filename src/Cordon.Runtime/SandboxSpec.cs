namespace Cordon.Runtime;

/// <summary>Everything a runtime needs to create one sandbox.</summary>
public sealed record SandboxSpec
{
    /// <summary>20 lowercase letters and digits; also the container id and host name.</summary>
    public required string Id { get; init; }

    /// <summary>Read-only image layer directories, bottom first.</summary>
    public required IReadOnlyList<string> Layers { get; init; }

    /// <summary>Snapshots (<see cref="ISandboxRuntime.SnapshotAsync"/>) stacked above <see cref="Layers"/>, oldest
    /// first: the sandbox starts from the file system its last one saved.</summary>
    public IReadOnlyList<string> Snapshots { get; init; } = [];

    /// <summary>Whether <see cref="Snapshots"/> are an image's own (the steps of a built image), which every sandbox
    /// of that image stacks the same: roots with them are then prepared ahead, as for any image. A fork's or a named
    /// snapshot's are not: each is new, and a root prepared for it would likely never be taken.</summary>
    public bool SnapshotsOfImage { get; init; }

    /// <summary>Volumes (<see cref="ISandboxRuntime.CreateVolumeAsync"/>) mounted into the sandbox.</summary>
    public IReadOnlyList<VolumeMount> Volumes { get; init; } = [];

    public SandboxLimits Limits { get; init; } = new();

    /// <summary>Environment every process in the sandbox starts with.</summary>
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();

    /// <summary>User commands run as when a request names none.</summary>
    public string User { get; init; } = "root";

    /// <summary>Working directory of commands that name none; "/" means the user's home directory.</summary>
    public string WorkingDir { get; init; } = "/";

    /// <summary>What the sandbox's traffic may reach; it can be changed while it runs
    /// (<see cref="ISandboxRuntime.SetNetworkAsync"/>). Loopback only when the host gives sandboxes no network.</summary>
    public Network.SandboxNetwork Network { get; init; } = Cordon.Runtime.Network.SandboxNetwork.None;

    /// <summary>Host files the sandbox sees read-only at a path of its own (the egress CA, say). Each source is the
    /// server's, world-readable, never a path inside an image.</summary>
    public IReadOnlyList<(string Source, string Destination)> Files { get; init; } = [];
}
