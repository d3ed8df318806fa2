using Cordon.Protocol.Api;
using Cordon.Server.Sandboxes;

namespace Cordon.Server.Shapes;

/// <summary>The service's results in the shapes of Cordon's own wire (Cordon.Protocol.Api), shared by the REST API
/// and the MCP tools' structured results.</summary>
public static class WireShapes
{
    public static SandboxInfo ToInfo(this Sandbox sandbox) => new()
    {
        Id = sandbox.Id,
        State = WireNames.Of(sandbox.State),
        Image = Images.ImageService.LocalName(sandbox.Image), // a tenant's image by the name it knows
        Cpu = sandbox.Cpu,
        MemoryMiB = sandbox.MemoryMiB,
        DiskMiB = sandbox.DiskMiB,
        MaxProcesses = sandbox.MaxProcesses,
        Runtime = sandbox.Runtime,
        CreatedAt = sandbox.CreatedAt,
        ExpiresAt = sandbox.ExpiresAt,
        EndedAt = sandbox.EndedAt,
        EndReason = sandbox.EndReason is { } reason ? WireNames.Of(reason) : null,
        Metadata = sandbox.Metadata,
        PublicPorts = sandbox.PublicPorts,
        Network = sandbox.Network.ToWire(),
        Secrets = sandbox.Network.Secrets.ToDictionary(b => b.Env, b => b.Secret),
        Timers = sandbox.Timers.ToWire(sandbox.TimeoutSeconds),
        StoppedAt = sandbox.StoppedAt,
        VolumeMounts = [.. sandbox.Volumes.Select(v => new VolumeMountInfo { Name = v.Volume, Path = v.Path, ReadOnly = v.ReadOnly })],
        Snapshot = sandbox.Snapshots.Count > 0 ? sandbox.Snapshots[^1] : null,
    };

    public static SandboxTimersInfo ToWire(this SandboxTimers timers, int timeoutSeconds) => new()
    {
        TimeoutSeconds = timeoutSeconds,
        OnTimeout = WireNames.Of(timers.OnTimeout),
        IdleTimeoutSeconds = timers.IdleTimeoutSeconds,
        OnIdle = WireNames.Of(timers.OnIdle),
        AutoResume = timers.AutoResume,
        StoppedRetentionSeconds = timers.StoppedRetentionSeconds ?? 0,
    };

    /// <summary>A change of timers from the wire (null fields keep theirs); an unknown action is refused by name.</summary>
    public static SandboxTimersChange ToChange(this SandboxTimersInfo wire) => new()
    {
        TimeoutSeconds = wire.TimeoutSeconds,
        OnTimeout = Action(wire.OnTimeout, "onTimeout"),
        IdleTimeoutSeconds = wire.IdleTimeoutSeconds,
        OnIdle = Action(wire.OnIdle, "onIdle"),
        AutoResume = wire.AutoResume,
        StoppedRetentionSeconds = wire.StoppedRetentionSeconds,
    };

    /// <summary>Timers for a create from the wire: absent fields take the defaults.</summary>
    public static SandboxTimers ToTimers(this SandboxTimersInfo wire) => new()
    {
        OnTimeout = Action(wire.OnTimeout, "onTimeout") ?? TimerAction.Destroy,
        IdleTimeoutSeconds = wire.IdleTimeoutSeconds is 0 ? null : wire.IdleTimeoutSeconds,
        OnIdle = Action(wire.OnIdle, "onIdle") ?? TimerAction.Pause,
        AutoResume = wire.AutoResume ?? false,
        StoppedRetentionSeconds = wire.StoppedRetentionSeconds,
    };

    private static TimerAction? Action(string? name, string field)
        => name is null ? null : WireNames.ParseAction(name) ?? throw Errors.CordonException.Invalid($"{field} '{name}' is not an action: use pause, stop or destroy.");

    public static VolumeInfo ToInfo(this Volumes.VolumeRecord volume, int usedBy) => new()
    {
        Id = volume.Id,
        Name = volume.Name,
        SizeMiB = volume.SizeMiB,
        CreatedAt = volume.CreatedAt,
        UsedBy = usedBy,
    };

    public static VolumeFileInfo ToInfo(this Volumes.VolumeFile entry) => new()
    {
        Name = entry.Name,
        Path = entry.Path,
        Type = entry.Type,
        Size = entry.Size,
        Mode = entry.Mode,
        Uid = entry.Uid,
        Gid = entry.Gid,
        ModifiedAt = entry.ModifiedAt,
        Target = entry.Target,
    };

    public static SnapshotInfo ToInfo(this Snapshots.SnapshotRecord snapshot, int usedBy) => new()
    {
        Id = snapshot.Id,
        Name = snapshot.Name ?? snapshot.Id,
        SandboxId = snapshot.SandboxId,
        Image = Images.ImageService.LocalName(snapshot.Image),
        DiskMiB = snapshot.DiskMiB,
        CreatedAt = snapshot.CreatedAt,
        UsedBy = usedBy,
    };

    public static NetworkPolicy ToWire(this Network.EgressPolicy policy) => new()
    {
        Internet = policy.Internet,
        AllowOut = policy.AllowText,
        DenyOut = policy.DenyText,
        Headers = policy.Headers.Count == 0 ? null : policy.HeadersText,
    };

    public static CodeRunResult ToResult(this CodeRun run) => new()
    {
        Status = WireNames.Of(run.Status),
        Stdout = run.Stdout,
        Stderr = run.Stderr,
        Results = run.Results,
        Error = run.Error,
        ExecutionCount = run.ExecutionCount,
        ContextId = run.ContextId,
        DurationMs = run.DurationMs,
        OutputTruncated = run.OutputTruncated,
    };

    public static ExecResult ToResult(this CommandResult result) => new()
    {
        ExitCode = result.ExitCode,
        Signal = result.Signal,
        TimedOut = result.TimedOut,
        DurationMs = result.DurationMs,
        Stdout = result.Stdout,
        Stderr = result.Stderr,
        OutputTruncated = result.OutputTruncated,
    };
}
