using System.Collections.Concurrent;
using System.Security.Cryptography;
using Cordon.Runtime;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Shapes;
using Cordon.Server.Snapshots;
using Cordon.Server.State;
using Microsoft.Extensions.Logging;

namespace Cordon.Server.Sandboxes;

/// <summary>Keeping the work: stop and start, snapshots and forks, the timers that pause, stop or destroy a sandbox,
/// and waking a paused or stopped sandbox when a request reaches it.</summary>
public sealed partial class SandboxService
{
    /// <summary>Most sandboxes one fork makes.</summary>
    public const int MaxForks = 20;

    /// <summary>A fork's snapshot is removed once no sandbox uses it and it is at least this old (its forks are made
    /// within it).</summary>

    private readonly ConcurrentDictionary<string, SnapshotRecord> _snapshots = new(StringComparer.Ordinal);

    // ---- stop and start ----------------------------------------------------------------------------

    /// <summary>Ends every process of the sandbox and keeps its file system; <see cref="StartAsync"/> brings it back.
    /// Stopping a stopped sandbox does nothing.</summary>
    public async Task<Sandbox> StopAsync(CallerIdentity caller, string id, string? via, CancellationToken cancellationToken)
    {
        var record = Find(caller, id);
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            await StopLockedAsync(record, $"Stopped on request{Through(via)}: its processes ended, its files are kept.");
            return record.ToView();
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    /// <summary>Starts a stopped sandbox again (or resumes a paused one). Starting a running sandbox does nothing.</summary>
    public async Task<Sandbox> StartAsync(CallerIdentity caller, string id, string? via, CancellationToken cancellationToken)
    {
        var record = Find(caller, id);
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            await WakeLockedAsync(record, $"on request{Through(via)}", cancellationToken);
            return record.ToView();
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    private async Task StopLockedAsync(SandboxRecord record, string message)
    {
        switch (record.State)
        {
            case SandboxState.Stopped:
                return;
            case SandboxState.Running or SandboxState.Paused:
                await RuntimeCallAsync(() => _runtime.SuspendAsync(record.Id, CancellationToken.None));
                _commands.ForgetSandbox(record.Id);
                record.State = SandboxState.Stopped;
                record.StoppedAt = DateTimeOffset.UtcNow;
                record.ExpiresAt = null;
                record.AgentAnswered = false;
                var kept = record.Timers.StoppedRetentionSeconds is { } keep ? $" It is kept {keep} s, then destroyed." : "";
                _store.SaveSandbox(record, "stopped", message + kept);
                return;
            default:
                throw NotLive(record);
        }
    }

    private async Task PauseLockedAsync(SandboxRecord record, string message, CancellationToken cancellationToken)
    {
        switch (record.State)
        {
            case SandboxState.Paused or SandboxState.Stopped:
                return;
            case SandboxState.Running:
                await RuntimeCallAsync(() => _runtime.PauseAsync(record.Id, cancellationToken));
                record.State = SandboxState.Paused;
                record.ExpiresAt = null; // a paused sandbox does not expire; resuming restarts its timeout
                _store.SaveSandbox(record, "paused", message);
                return;
            default:
                throw NotLive(record);
        }
    }

    /// <summary>Resumes a paused sandbox or starts a stopped one, within the key's CPU and memory quotas (which
    /// paused and stopped sandboxes do not hold), and restarts its timeout.</summary>
    private async Task WakeLockedAsync(SandboxRecord record, string how, CancellationToken cancellationToken)
    {
        switch (record.State)
        {
            case SandboxState.Running:
                return;
            case SandboxState.Paused:
                AdmitWake(record);
                await RuntimeCallAsync(() => _runtime.ResumeAsync(record.Id, cancellationToken));
                record.State = SandboxState.Running;
                record.ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(record.TimeoutSeconds);
                record.LastActivity = Environment.TickCount64;
                _store.SaveSandbox(record, "resumed", $"Resumed {how}; expires in {record.TimeoutSeconds} s.");
                return;
            case SandboxState.Stopped:
                AdmitWake(record);
                await RuntimeCallAsync(() => _runtime.StartAsync(record.Id, cancellationToken));
                record.State = SandboxState.Running;
                record.Starts++;
                record.StoppedAt = null;
                record.ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(record.TimeoutSeconds);
                record.LastActivity = Environment.TickCount64;
                _store.SaveSandbox(record, "started", $"Started again {how}, in the files it kept; expires in {record.TimeoutSeconds} s.");
                _ = VerifyAgentAsync(record, restarted: true);
                return;
            default:
                throw NotLive(record);
        }
    }

    /// <summary>Brings a paused or stopped sandbox back before a request reaches its agent, when it asked for that
    /// (<see cref="SandboxTimers.AutoResume"/>); a running one costs one read.</summary>
    private async ValueTask WakeForRequestAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        if (record.State == SandboxState.Running)
        {
            return;
        }

        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (record.State is SandboxState.Paused or SandboxState.Stopped && !record.Timers.AutoResume)
            {
                throw NotRunning(record);
            }

            await WakeLockedAsync(record, "automatically by a request (autoResume)", cancellationToken);
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    private static CordonException NotRunning(SandboxRecord record) => record.State switch
    {
        SandboxState.Paused => new CordonException(ErrorCode.SandboxPaused, $"The sandbox '{record.Id}' is paused: resume it first (or create it with autoResume).") { Subject = record.Id },
        SandboxState.Stopped => new CordonException(ErrorCode.SandboxStopped, $"The sandbox '{record.Id}' is stopped (its files are kept): start it first (or create it with autoResume).") { Subject = record.Id },
        _ => NotLive(record),
    };

    /// <summary>Changes a live sandbox's timers; null fields keep theirs.</summary>
    public Sandbox SetTimers(CallerIdentity caller, string id, SandboxTimersChange change)
    {
        var record = Find(caller, id);
        if (record.State == SandboxState.Ended)
        {
            throw NotLive(record);
        }

        var timers = ValidTimers(new SandboxTimers
        {
            OnTimeout = change.OnTimeout ?? record.Timers.OnTimeout,
            IdleTimeoutSeconds = change.IdleTimeoutSeconds is { } idle ? (idle == 0 ? null : idle) : record.Timers.IdleTimeoutSeconds,
            OnIdle = change.OnIdle ?? record.Timers.OnIdle,
            AutoResume = change.AutoResume ?? record.Timers.AutoResume,
            StoppedRetentionSeconds = change.StoppedRetentionSeconds is { } keep ? (keep == 0 ? null : keep) : record.Timers.StoppedRetentionSeconds,
        });
        if (change.TimeoutSeconds is { } seconds)
        {
            SetTimeout(caller, id, seconds);
        }

        record.Timers = timers;
        record.LastActivity = Environment.TickCount64;
        _store.SaveSandbox(record, "timers", "Timers set: " + DescribeTimers(timers) + ".");
        return record.ToView();
    }

    private SandboxTimers ValidTimers(SandboxTimers timers)
    {
        Require(timers.IdleTimeoutSeconds is null or (>= 1 and <= 604800), $"idleTimeoutSeconds must be between 1 and 604800 (a week), or 0 for none; {timers.IdleTimeoutSeconds} was asked.");
        Require(timers.StoppedRetentionSeconds is null or (>= 1 and <= 31536000), $"stoppedRetentionSeconds must be between 1 and 31536000 (a year), or 0 to keep it until deleted; {timers.StoppedRetentionSeconds} was asked.");
        return timers;
    }

    private static string DescribeTimers(SandboxTimers timers)
        => $"on timeout {WireNames.Of(timers.OnTimeout)}"
           + (timers.IdleTimeoutSeconds is { } idle ? $", {WireNames.Of(timers.OnIdle)} after {idle} s idle" : ", no idle timer")
           + (timers.AutoResume ? ", requests resume it" : "")
           + (timers.StoppedRetentionSeconds is { } keep ? $", kept {keep} s once stopped" : ", kept until deleted once stopped");

    private static string Through(string? via) => via is null ? "" : " through " + via;

    // ---- timers ------------------------------------------------------------------------------------

    /// <summary>Applies the idle timers and the stopped retention, and removes fork snapshots no sandbox uses.</summary>
    private async Task RunTimersAsync(CancellationToken cancellationToken)
    {
        var now = Environment.TickCount64;
        foreach (var record in _live.Values.ToList())
        {
            try
            {
                if (record.State == SandboxState.Running && record.Timers.IdleTimeoutSeconds is { } idle
                    && now - record.LastActivity >= idle * 1000L && record.Busy == 0 && !_commands.HasRunning(record.Id))
                {
                    await ApplyTimerAsync(record, record.Timers.OnIdle, $"after {idle} s idle (no request, command, stream or connection)", cancellationToken,
                        r => r.State == SandboxState.Running && r.Busy == 0 && Environment.TickCount64 - r.LastActivity >= idle * 1000L);
                }
                else if (record.State == SandboxState.Stopped && record.Timers.StoppedRetentionSeconds is { } keep
                    && record.StoppedAt is { } stoppedAt && DateTimeOffset.UtcNow - stoppedAt >= TimeSpan.FromSeconds(keep))
                {
                    await ApplyTimerAsync(record, TimerAction.Destroy, $"after {keep} s stopped (its retention)", cancellationToken,
                        r => r.State == SandboxState.Stopped);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogTimerFailed(record.Id, ex.Message);
            }
        }

        // What images and the build cache hold is read (from the store) only when some snapshot of the server's is old
        // enough to go: the housekeeper runs every second.
        var candidates = _snapshots.Values.Where(s => s.Internal && DateTimeOffset.UtcNow - s.CreatedAt > TimeSpan.FromSeconds(_options.UnusedSnapshotGraceSeconds)).ToList();
        var referenced = candidates.Count > 0 ? _images.ReferencedSnapshots() : [];
        foreach (var snapshot in candidates)
        {
            if (SnapshotUsers(snapshot.Id, referenced) == 0)
            {
                await RemoveSnapshotAsync(snapshot);
            }
        }
    }

    /// <summary>Pauses, stops or destroys a sandbox for a timer, if <paramref name="stillDue"/> holds under its lock.</summary>
    private async Task ApplyTimerAsync(SandboxRecord record, TimerAction action, string why, CancellationToken cancellationToken, Func<SandboxRecord, bool> stillDue)
    {
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (!stillDue(record))
            {
                return;
            }

            switch (action)
            {
                case TimerAction.Pause:
                    await PauseLockedAsync(record, $"Paused by its timer {why}: every process is frozen where it stands.", cancellationToken);
                    break;
                case TimerAction.Stop:
                    await StopLockedAsync(record, $"Stopped by its timer {why}: its processes ended, its files are kept.");
                    break;
                default:
                    await RuntimeCallAsync(() => _runtime.StopAsync(record.Id, CancellationToken.None));
                    End(record, EndReason.Expired, $"Destroyed by its timer {why}.");
                    _store.Audit(CallerIdentity.System.KeyId, "sandbox.expire", record.Id);
                    _cleanups[record.Id] = CleanUpAsync(record.Id);
                    break;
            }
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    // ---- snapshots and forks -------------------------------------------------------------------------

    /// <summary>Saves the sandbox's file system as a named snapshot owned by the caller's key, while it runs (frozen
    /// for the few ms the clone takes), is paused or stopped. New sandboxes start from it as from an image.</summary>
    public async Task<SnapshotRecord> SnapshotAsync(CallerIdentity caller, string id, string? name, string? via, CancellationToken cancellationToken)
    {
        var record = Find(caller, id);
        name ??= $"{record.Id}-{DateTimeOffset.UtcNow:yyyyMMddHHmmssfff}";
        ValidateSnapshotName(name);
        if (_snapshots.Values.Any(s => s.Owner == record.Owner && s.Name == name))
        {
            throw new CordonException(ErrorCode.AlreadyExists, $"A snapshot named '{name}' exists already: pick another name, or delete that one first.") { Subject = name };
        }

        var held = _snapshots.Values.Count(s => s.Owner == record.Owner && !s.Internal);
        if (held >= _options.MaxSnapshotsPerKey)
        {
            throw new CordonException(ErrorCode.QuotaExceeded, $"Your key holds {held} snapshots, its most: delete ones you no longer need (DELETE /v1/snapshots/{{id}}) and retry.");
        }

        return await TakeSnapshotAsync(caller, record, name, via, cancellationToken);
    }

    private async Task<SnapshotRecord> TakeSnapshotAsync(CallerIdentity caller, SandboxRecord record, string? name, string? via, CancellationToken cancellationToken)
    {
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (record.State is not (SandboxState.Running or SandboxState.Paused or SandboxState.Stopped))
            {
                throw NotLive(record);
            }

            var snapshotId = "snap_" + RandomNumberGenerator.GetString(IdAlphabet, 20);
            var snapshot = new SnapshotRecord
            {
                Id = snapshotId,
                Layers = [.. record.Snapshots, snapshotId],
                Owner = record.Owner,
                Name = name,
                SandboxId = record.Id,
                Image = record.Image,
                User = record.User,
                DiskMiB = record.DiskMiB,
                CreatedAt = DateTimeOffset.UtcNow,
            };

            // Recorded before its files exist, so a crash in between leaves a record the next start removes.
            _store.SaveSnapshot(snapshot);
            try
            {
                await _runtime.SnapshotAsync(record.Id, snapshot.Id, cancellationToken);
            }
            catch (SandboxRuntimeException ex)
            {
                _store.DeleteSnapshot(snapshot.Id);
                var available = (await _runtime.ProbeAsync(CancellationToken.None)).Snapshots;
                throw new CordonException(available ? ErrorCode.RuntimeFailed : ErrorCode.SnapshotsUnavailable, ex.Message, ex);
            }
            catch
            {
                _store.DeleteSnapshot(snapshot.Id);
                throw;
            }

            snapshot = snapshot with { Ready = true };
            _store.SaveSnapshot(snapshot);
            _snapshots[snapshot.Id] = snapshot;
            _store.AddEvent(record.Id, "snapshotted", name is null
                ? $"Its file system was saved for a fork or a build step{Through(via)} ({snapshot.Id})."
                : $"Snapshot '{name}' ({snapshot.Id}) taken{Through(via)}.");
            _store.Audit(caller.KeyId, "sandbox.snapshot", record.Id, snapshot.Id);
            return snapshot;
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    /// <summary>Makes <paramref name="count"/> new sandboxes from the sandbox's file system as it is now, each with its
    /// settings (resources, environment, network, timers) and independent afterwards. Each entry is a sandbox or the
    /// reason that one could not be made.</summary>
    public async Task<IReadOnlyList<(Sandbox? Sandbox, CordonException? Error)>> ForkAsync(CallerIdentity caller, string id, int count, int? timeoutSeconds, string? via, CancellationToken cancellationToken)
    {
        Require(count is >= 1 and <= MaxForks, $"count must be between 1 and {MaxForks}; {count} was asked.");
        var record = Find(caller, id);
        var snapshot = await TakeSnapshotAsync(caller, record, null, via, cancellationToken);
        var request = new NewSandbox
        {
            Snapshot = snapshot.Id,
            Cpu = record.Cpu,
            MemoryMiB = record.MemoryMiB,
            DiskMiB = record.DiskMiB,
            MaxProcesses = record.MaxProcesses,
            TimeoutSeconds = timeoutSeconds ?? record.TimeoutSeconds,
            Env = record.Env,
            Metadata = record.Metadata,
            PublicPorts = record.PublicPorts,
            Network = record.Network with { Secrets = [] },
            Secrets = record.Network.Secrets.ToDictionary(s => s.Env, s => s.Secret),
            Timers = record.Timers,
            Volumes = record.Volumes,
        };
        var forks = await Task.WhenAll(Enumerable.Range(0, count).Select(async _ =>
        {
            try
            {
                return ((Sandbox?)await CreateAsync(caller, request, cancellationToken), (CordonException?)null);
            }
            catch (CordonException ex)
            {
                return (null, ex);
            }
        }));
        _store.AddEvent(record.Id, "forked", $"Forked into {forks.Count(f => f.Item1 is not null)} sandbox(es){Through(via)}: {string.Join(", ", forks.Select(f => f.Item1?.Id ?? "failed"))}.");
        return forks;
    }

    /// <summary>Whether this host can take snapshots now (builds need them).</summary>
    public async Task<bool> CanSnapshotAsync(CancellationToken cancellationToken) => (await _runtime.ProbeAsync(cancellationToken)).Snapshots;

    /// <summary>The caller's named snapshots, oldest first (those a fork took are not listed).</summary>
    public IReadOnlyList<SnapshotRecord> ListSnapshots(CallerIdentity caller, string? sandboxId)
        => [.. _snapshots.Values.Where(s => caller.CanSee(s.Owner) && !s.Internal && (sandboxId is null || s.SandboxId == sandboxId)).OrderBy(s => s.CreatedAt)];

    /// <summary>A snapshot of the caller's, by id or by name.</summary>
    public SnapshotRecord GetSnapshot(CallerIdentity caller, string idOrName) => FindSnapshot(caller, idOrName)
        ?? throw new CordonException(ErrorCode.SnapshotNotFound, $"No snapshot '{Shorten(idOrName)}' exists for this API key.") { Subject = idOrName };

    /// <summary>How many live sandboxes, other snapshots, and images or build cache entries (one for all of them)
    /// start from the snapshot.</summary>
    /// <param name="referenced">What images and the build cache hold (<see cref="Images.ImageService.ReferencedSnapshots"/>),
    /// when the caller has read it already.</param>
    public int SnapshotUsers(string snapshotId, ISet<string>? referenced = null)
        => _live.Values.Count(r => r.Snapshots.Contains(snapshotId))
           + _snapshots.Values.Count(s => s.Id != snapshotId && s.Layers.Contains(snapshotId))
           + ((referenced ?? _images.ReferencedSnapshots()).Contains(snapshotId) ? 1 : 0);

    /// <summary>How many start from each of <paramref name="snapshots"/> (<see cref="SnapshotUsers(string, ISet{string})"/>),
    /// what images and the build cache hold read once for the lot.</summary>
    public IReadOnlyList<(SnapshotRecord Snapshot, int Users)> WithUsers(IEnumerable<SnapshotRecord> snapshots)
    {
        var referenced = _images.ReferencedSnapshots();
        return [.. snapshots.Select(s => (s, SnapshotUsers(s.Id, referenced)))];
    }

    /// <summary>Saves the sandbox's file system as a snapshot of the server's for a build step: not listed, not counted
    /// against the key's snapshots, removed once no image, build cache entry or sandbox uses it.</summary>
    public Task<SnapshotRecord> SnapshotForBuildAsync(CallerIdentity caller, string id, CancellationToken cancellationToken)
        => TakeSnapshotAsync(caller, Find(caller, id), null, "the image builder", cancellationToken);

    /// <summary>Deletes a snapshot; refused while a sandbox or another snapshot starts from it. Deleting one that is
    /// gone does nothing.</summary>
    public async Task DeleteSnapshotAsync(CallerIdentity caller, string idOrName, CancellationToken cancellationToken)
    {
        if (FindSnapshot(caller, idOrName) is not { } snapshot)
        {
            return;
        }

        await _admission.WaitAsync(cancellationToken); // no create takes it up meanwhile
        try
        {
            if (SnapshotUsers(snapshot.Id) is > 0 and var users)
            {
                throw new CordonException(ErrorCode.SnapshotInUse, $"{users} sandbox(es) or snapshot(s) start from snapshot '{snapshot.Name ?? snapshot.Id}': destroy them (or their snapshots) first.") { Subject = snapshot.Id };
            }

            await RemoveSnapshotAsync(snapshot);
            _store.Audit(caller.KeyId, "snapshot.delete", snapshot.Id, snapshot.Name);
        }
        finally
        {
            _admission.Release();
        }
    }

    private async Task RemoveSnapshotAsync(SnapshotRecord snapshot)
    {
        try
        {
            await _runtime.DeleteSnapshotAsync(snapshot.Id, CancellationToken.None);
        }
        catch (SandboxRuntimeException ex)
        {
            throw new CordonException(ErrorCode.RuntimeFailed, ex.Message, ex) { RetryAfterSeconds = 5 };
        }

        _snapshots.TryRemove(snapshot.Id, out _);
        _store.DeleteSnapshot(snapshot.Id);
    }

    /// <summary>A snapshot of the caller's, by id or by name, or null.</summary>
    public SnapshotRecord? FindSnapshot(CallerIdentity caller, string idOrName)
    {
        if (_snapshots.TryGetValue(idOrName, out var byId))
        {
            return caller.CanSee(byId.Owner) ? byId : null;
        }

        return _snapshots.Values.FirstOrDefault(s => s.Name == idOrName && s.Owner == caller.KeyId);
    }

    private static void ValidateSnapshotName(string name)
        => Require(name.Length is >= 1 and <= 128 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':')
                && char.IsAsciiLetterOrDigit(name[0]) && !name.Contains("..", StringComparison.Ordinal) && !name.StartsWith("snap_", StringComparison.Ordinal),
            "A snapshot name is 1 to 128 letters, digits, '-', '_', '.' or ':', starts with a letter or digit, and does not start with 'snap_'.");

    /// <summary>Loads the snapshots and makes them match the host: one whose taking a crash cut short is removed, as
    /// are files no record owns.</summary>
    private async Task ReconcileSnapshotsAsync(CancellationToken cancellationToken)
    {
        foreach (var snapshot in _store.LoadSnapshots())
        {
            if (snapshot.Ready)
            {
                _snapshots[snapshot.Id] = snapshot;
                continue;
            }

            await _runtime.DeleteSnapshotAsync(snapshot.Id, cancellationToken);
            _store.DeleteSnapshot(snapshot.Id);
            _store.AddEvent(snapshot.SandboxId, "snapshot_failed", $"A snapshot ({snapshot.Id}) was being taken when the server stopped; its partial files were removed. Take it again.");
        }

        foreach (var leftover in _runtime.ListSnapshots().Where(s => !_snapshots.ContainsKey(s)))
        {
            await _runtime.DeleteSnapshotAsync(leftover, cancellationToken);
        }
    }

    [LoggerMessage(EventId = 4011, Level = LogLevel.Warning, Message = "A timer of sandbox {Id} could not act: {Message}")]
    private partial void LogTimerFailed(string id, string message);
}

/// <summary>A change of a sandbox's timers; null fields keep theirs, 0 turns the idle timer or the retention off.</summary>
public sealed record SandboxTimersChange
{
    public int? TimeoutSeconds { get; init; }

    public TimerAction? OnTimeout { get; init; }

    public int? IdleTimeoutSeconds { get; init; }

    public TimerAction? OnIdle { get; init; }

    public bool? AutoResume { get; init; }

    public int? StoppedRetentionSeconds { get; init; }
}
