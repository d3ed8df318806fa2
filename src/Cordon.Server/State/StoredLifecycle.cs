using System.Text.Json;
using System.Text.Json.Serialization;
using Cordon.Server.Sandboxes;
using Cordon.Server.Shapes;

namespace Cordon.Server.State;

/// <summary>What a sandbox's row keeps of its persistence: <c>{"timers":{…},"snapshots":[…],"env":{…},"stoppedAt":…}</c>.
/// Rows from before it (<c>{}</c>) read as the defaults.</summary>
internal sealed record StoredLifecycle(StoredTimers? Timers, string[]? Snapshots, Dictionary<string, string>? Env, DateTimeOffset? StoppedAt,
    StoredVolume[]? Volumes = null)
{
    public static string Of(SandboxRecord record)
        => JsonSerializer.Serialize(new StoredLifecycle(
            new StoredTimers(WireNames.Of(record.Timers.OnTimeout), record.Timers.IdleTimeoutSeconds, WireNames.Of(record.Timers.OnIdle),
                record.Timers.AutoResume, record.Timers.StoppedRetentionSeconds),
            record.Snapshots.Count == 0 ? null : [.. record.Snapshots],
            record.Env.Count == 0 ? null : record.Env.ToDictionary(),
            record.StoppedAt,
            record.Volumes.Count == 0 ? null : [.. record.Volumes.Select(v => new StoredVolume(v.Volume, v.Path, v.ReadOnly))]), StoredLifecycleJson.Default.StoredLifecycle);

    public static (SandboxTimers Timers, IReadOnlyList<string> Snapshots, IReadOnlyDictionary<string, string> Env, DateTimeOffset? StoppedAt,
        IReadOnlyList<SandboxVolume> Volumes) Parse(string json)
    {
        var stored = JsonSerializer.Deserialize(json, StoredLifecycleJson.Default.StoredLifecycle);
        var timers = stored?.Timers is { } t
            ? new SandboxTimers
            {
                OnTimeout = WireNames.ParseAction(t.OnTimeout) ?? TimerAction.Destroy,
                IdleTimeoutSeconds = t.IdleTimeoutSeconds,
                OnIdle = WireNames.ParseAction(t.OnIdle) ?? TimerAction.Pause,
                AutoResume = t.AutoResume,
                StoppedRetentionSeconds = t.StoppedRetentionSeconds,
            }
            : new SandboxTimers();
        return (timers, stored?.Snapshots ?? [], stored?.Env ?? [], stored?.StoppedAt,
            [.. (stored?.Volumes ?? []).Select(v => new SandboxVolume(v.Volume, v.Path, v.ReadOnly))]);
    }
}

internal sealed record StoredVolume(string Volume, string Path, bool ReadOnly);

internal sealed record StoredTimers(string OnTimeout, int? IdleTimeoutSeconds, string OnIdle, bool AutoResume, int? StoppedRetentionSeconds);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(StoredLifecycle))]
internal sealed partial class StoredLifecycleJson : JsonSerializerContext;
