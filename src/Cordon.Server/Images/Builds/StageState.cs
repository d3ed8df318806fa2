using Cordon.Protocol.Api;

namespace Cordon.Server.Images.Builds;

/// <summary>Where a stage of a build stands after its last step: the file system (a base image, then a snapshot per
/// step), the configuration the steps set, and the step cache key that names exactly this state.</summary>
internal sealed class StageState
{
    /// <summary>The stage's name (or number), as the log shows it.</summary>
    public required string Label { get; init; }

    /// <summary>The image the stage's sandboxes start from (a snapshot of theirs keeps its name).</summary>
    public required string BaseName { get; init; }

    public required ImageInfo BaseImage { get; init; }

    /// <summary>A digest of the base and every step so far: equal keys, equal states.</summary>
    public required string Key { get; set; }

    /// <summary>The last step's snapshot, or null while the file system is the base image's.</summary>
    public string? Snapshot { get; set; }

    /// <summary>The snapshots stacked over the base image's layers, oldest first.</summary>
    public required IReadOnlyList<string> Chain { get; set; }

    public required Dictionary<string, string> Env { get; init; }

    /// <summary>The ARGs the stage declared, with their values (null: declared without one).</summary>
    public Dictionary<string, string?> Args { get; init; } = new(StringComparer.Ordinal);

    public required string User { get; set; }

    public required string WorkDir { get; set; }

    public IReadOnlyList<string>? Cmd { get; set; }

    public IReadOnlyList<string>? Entrypoint { get; set; }

    public IReadOnlyList<string> Shell { get; set; } = ["/bin/sh", "-c"];

    /// <summary>A sandbox whose file system is this state (steps run in it), or null.</summary>
    public string? Sandbox { get; set; }

    /// <summary>A step of this stage ran (missed the cache): the later ones run too.</summary>
    public bool Ran { get; set; }

    /// <summary>What a variable is in this stage's instructions: its ENV, else its ARG.</summary>
    public string? Lookup(string name) => Env.TryGetValue(name, out var value) ? value : Args.GetValueOrDefault(name);

    /// <summary>The state a new stage <c>FROM</c> this one starts in: same files and configuration, no sandbox, no ARGs.</summary>
    public StageState Derive(string label, string key) => new()
    {
        Label = label,
        BaseName = BaseName,
        BaseImage = BaseImage,
        Key = key,
        Snapshot = Snapshot,
        Chain = Chain,
        Env = new Dictionary<string, string>(Env, StringComparer.Ordinal),
        User = User,
        WorkDir = WorkDir,
        Cmd = Cmd,
        Entrypoint = Entrypoint,
        Shell = Shell,
    };
}
