using Cordon.Runtime;
using Cordon.Runtime.Agent;
using Cordon.Server.Auth;
using Cordon.Server.State;
using Microsoft.Extensions.Logging;

namespace Cordon.Server.Sandboxes;

/// <summary>Keeping the records true: reconciliation with what really runs at start, and the timers.</summary>
public sealed partial class SandboxService
{
    /// <summary>Metadata that marks a sandbox an image build runs its steps in (its value: the image's name).</summary>
    public const string BuildMetadata = "cordon.build";

    /// <summary>Destroys every running sandbox whose timeout has passed, and forgets long-ended ones.</summary>
    public async Task ExpireDueAsync(CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var record in _live.Values.Where(r => r.State == SandboxState.Running && r.ExpiresAt <= now).ToList())
        {
            try
            {
                LogExpired(record.Id);
                await ExpireAsync(record, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogExpireFailed(record.Id, ex.Message);
            }
        }

        await RunTimersAsync(cancellationToken);
        _store.PurgeEnded(now - _options.EndedRetention, now - _options.AuditRetention);
        _commands.ForgetEnded();
    }

    private async Task ExpireAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            // Checked again under the lock: a resume or a new timeout may have come first.
            if (record.State != SandboxState.Running || record.ExpiresAt > DateTimeOffset.UtcNow)
            {
                return;
            }

            var why = $"because its timeout of {record.TimeoutSeconds} s passed";
            switch (record.Timers.OnTimeout)
            {
                case TimerAction.Pause:
                    await PauseLockedAsync(record, $"Paused {why} (its timeout action is pause): every process is frozen where it stands.", cancellationToken);
                    break;
                case TimerAction.Stop:
                    await StopLockedAsync(record, $"Stopped {why} (its timeout action is stop): its processes ended, its files are kept.");
                    break;
                default:
                    await RuntimeCallAsync(() => _runtime.StopAsync(record.Id, CancellationToken.None));
                    End(record, EndReason.Expired);
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

    /// <summary>Sandboxes whose agent exited while no live record had them yet (during reconciliation): ended
    /// when they are adopted.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _exitedUnadopted = new(StringComparer.Ordinal);

    /// <summary>The runtime saw a sandbox's agent exit (not by stop or destroy): the sandbox ends at once, with
    /// that reason in its history, instead of answering 502 until its timeout.</summary>
    private void OnSandboxExited(string id)
    {
        if (_live.TryGetValue(id, out var record))
        {
            _ = EndExitedAsync(record);
        }
        else
        {
            _exitedUnadopted[id] = true;
        }
    }

    private async Task EndExitedAsync(SandboxRecord record)
    {
        try
        {
            await record.Lifecycle.WaitAsync(_stopping.Token);
        }
        catch (OperationCanceledException)
        {
            return; // the server is stopping: the next start finds the sandbox gone
        }

        try
        {
            // Destroyed meanwhile, or still being created (the creation's own check then finds the agent gone).
            if (record.State is not (SandboxState.Running or SandboxState.Paused))
            {
                return;
            }

            // An agent that exited before it ever answered never started. One that ran leaves a stopped sandbox: its
            // files are kept (nothing is deleted silently), and it can start again or be destroyed.
            LogAgentExited(record.Id);
            if (record.AgentAnswered)
            {
                await StopLockedAsync(record, "Stopped because its agent (PID 1) exited while it ran: the out-of-memory killer took it, or it crashed. "
                    + "Every process ended with it; its files are kept. Start it again (with more memory if its commands used all of it) or destroy it.");
                _store.Audit(CallerIdentity.System.KeyId, "sandbox.exited", record.Id);
                return;
            }

            try
            {
                await _runtime.StopAsync(record.Id, CancellationToken.None);
            }
            catch (SandboxRuntimeException ex)
            {
                LogCleanupFailed(record.Id, ex.Detail ?? ex.Message);
            }

            End(record, EndReason.Failed);
            _store.Audit(CallerIdentity.System.KeyId, "sandbox.exited", record.Id);
            _cleanups[record.Id] = CleanUpAsync(record.Id);
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    /// <summary>Makes the records match what really runs: adopts live sandboxes, ends the ones that are gone,
    /// and removes runtime leftovers no record owns. Runs once at start, before the API accepts work.</summary>
    public async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var found = (await _runtime.ListAsync(cancellationToken)).ToDictionary(s => s.Id, StringComparer.Ordinal);
        await ReconcileSnapshotsAsync(cancellationToken);
        LoadVolumes();
        var records = _store.LoadSandboxes(SandboxState.Creating, SandboxState.Running, SandboxState.Paused, SandboxState.Stopped);
        foreach (var record in records)
        {
            found.Remove(record.Id, out var actual);

            // Its processes are gone but its files are there: a stopped sandbox stays stopped, and one the server
            // believed running or paused (the host killed it, or the server died stopping it) becomes stopped, its
            // files kept, instead of being removed.
            if (record.State != SandboxState.Creating && actual is { Status: RuntimeSandboxStatus.Stopped })
            {
                _live[record.Id] = record;
                if (record.State != SandboxState.Stopped)
                {
                    record.State = SandboxState.Stopped;
                    record.StoppedAt = DateTimeOffset.UtcNow;
                    record.ExpiresAt = null;
                    _store.SaveSandbox(record, "stopped", "The server restarted and found the sandbox's processes ended (killed, or stopped when the server died); its files are kept. Start it again or destroy it.");
                }

                continue;
            }

            var alive = actual is { Status: RuntimeSandboxStatus.Running or RuntimeSandboxStatus.Paused } && record.State != SandboxState.Creating;
            if (alive && actual!.Status == RuntimeSandboxStatus.Running)
            {
                try
                {
                    await AgentOf(record).InfoAsync(cancellationToken);
                }
                catch (Exception ex) when (ex is SandboxRuntimeException or AgentErrorException or IOException or InvalidDataException)
                {
                    alive = false;
                }
            }

            if (alive)
            {
                record.State = actual!.Status == RuntimeSandboxStatus.Paused ? SandboxState.Paused : SandboxState.Running;
                _live[record.Id] = record;
                _store.SaveSandbox(record, "adopted", "The server restarted and found the sandbox still running.");
                LogAdopted(record.Id);
                if (_exitedUnadopted.TryRemove(record.Id, out _))
                {
                    OnSandboxExited(record.Id);
                }

                continue;
            }

            // One sandbox that cannot be cleaned up must not keep the server from starting.
            if (await TryDestroyAsync(record.Id, cancellationToken))
            {
                End(record, EndReason.Lost);
                LogLost(record.Id);
            }
        }

        _exitedUnadopted.Clear();
        foreach (var orphan in found.Keys)
        {
            if (await TryDestroyAsync(orphan, cancellationToken))
            {
                _store.Audit("system", "sandbox.orphan_removed", orphan);
                LogOrphan(orphan);
            }
        }

        await RemoveLeftoverPoolMembersAsync(cancellationToken);
        await RemoveLeftoverBuildSandboxesAsync(cancellationToken);
        StartPools();
    }

    /// <summary>The sandboxes of builds an earlier run of the server did not finish: no build will use them again.</summary>
    private async Task RemoveLeftoverBuildSandboxesAsync(CancellationToken cancellationToken)
    {
        foreach (var record in _live.Values.Where(r => r.Metadata.ContainsKey(BuildMetadata)).ToList())
        {
            await DestroyAsync(CallerIdentity.System, record.Id, "the server's start (a build of an earlier run)", cancellationToken);
        }
    }

    private async Task<bool> TryDestroyAsync(string id, CancellationToken cancellationToken)
    {
        try
        {
            await _runtime.DestroyAsync(id, cancellationToken);
            return true;
        }
        catch (SandboxRuntimeException ex)
        {
            LogReconcileFailed(id, ex.Detail ?? ex.Message);
            return false;
        }
    }

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "Sandbox {Id} expired")]
    private partial void LogExpired(string id);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Sandbox {Id} could not be expired: {Message}")]
    private partial void LogExpireFailed(string id, string message);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Information, Message = "Adopted running sandbox {Id}")]
    private partial void LogAdopted(string id);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Information, Message = "Sandbox {Id} was gone at start; its leftovers were removed")]
    private partial void LogLost(string id);

    [LoggerMessage(EventId = 4007, Level = LogLevel.Error, Message = "Sandbox {Id} could not be cleaned up at start (retried at the next start): {Detail}")]
    private partial void LogReconcileFailed(string id, string detail);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Warning, Message = "The agent of sandbox {Id} exited while the sandbox ran; the sandbox ended")]
    private partial void LogAgentExited(string id);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Warning, Message = "Removed orphan sandbox {Id} that no record owns")]
    private partial void LogOrphan(string id);
}
