using System.Security.Cryptography;
using Cordon.Protocol.Api;
using Cordon.Runtime;
using Cordon.Runtime.Agent;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Images;
using Cordon.Server.Network;
using Cordon.Server.State;
using Microsoft.Extensions.Logging;

namespace Cordon.Server.Sandboxes;

/// <summary>A sandbox's life: create, the check that its agent started, pause, resume, timeout, destroy.</summary>
public sealed partial class SandboxService
{
    private const string IdAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    /// <summary>Creates a sandbox and returns once it runs (its agent finishes starting meanwhile; its first request
    /// waits for it).</summary>
    public async Task<Sandbox> CreateAsync(CallerIdentity caller, NewSandbox request, CancellationToken cancellationToken)
    {
        var snapshot = request.Snapshot is { } snapshotName ? GetSnapshot(caller, snapshotName) : null;
        Require(snapshot is null || request.Image is null || request.Image == snapshot.Image || request.Image == ImageService.LocalName(snapshot.Image),
            $"The snapshot starts from image '{(snapshot is null ? "" : ImageService.LocalName(snapshot.Image))}': give the snapshot alone, without another image.");
        // A snapshot names its image by the stored name; a caller, by the name it knows (its own image first).
        var requestedImage = request.Image ?? _options.DefaultImage;
        if (snapshot is null)
        {
            ImageService.ValidateName(requestedImage, storedForm: caller.Admin); // an admin may name a tenant's image as {key}/{name}
        }
        var cpu = request.Cpu ?? 1;
        var memory = request.MemoryMiB ?? 512;
        var disk = request.DiskMiB ?? snapshot?.DiskMiB ?? 2048;
        var pids = request.MaxProcesses ?? 256;
        var timeout = request.TimeoutSeconds ?? _options.DefaultTimeoutSeconds;
        Require(double.IsFinite(cpu) && cpu >= 0.05 && cpu <= _options.MaxCpu, $"cpu must be between 0.05 and {_options.MaxCpu} (cores of this host); {cpu} was asked.");
        Require(memory >= 32 && memory <= _options.MaxMemoryMiB, $"memoryMiB must be between 32 and {_options.MaxMemoryMiB}; {memory} was asked.");
        Require(disk >= 16 && disk <= _options.MaxDiskMiB, $"diskMiB must be between 16 and {_options.MaxDiskMiB}; {disk} was asked.");
        Require(pids >= 8 && pids <= _options.MaxProcesses, $"maxProcesses must be between 8 and {_options.MaxProcesses}; {pids} was asked.");
        Require(timeout >= 1 && timeout <= _options.MaxTimeoutSeconds, $"timeoutSeconds must be between 1 and {_options.MaxTimeoutSeconds}; {timeout} was asked.");
        ValidateEnvironment(request.Env, "env");
        ValidateMetadata(request.Metadata);
        // A retention left out takes the server's; 0 keeps the sandbox until deleted once stopped.
        var askedTimers = request.Timers ?? new SandboxTimers();
        var timers = ValidTimers(askedTimers with
        {
            StoppedRetentionSeconds = askedTimers.StoppedRetentionSeconds switch
            {
                null => _options.DefaultStoppedRetentionSeconds > 0 ? _options.DefaultStoppedRetentionSeconds : null,
                0 => null,
                var seconds => seconds,
            },
        });
        if (request.Network is { } asked)
        {
            RequireNetworkFor(asked);
        }

        // Without a network on this host, the default is loopback only (GET /health says why).
        var network = (request.Network ?? (_runtime.HasNetwork ? DefaultNetwork : EgressPolicy.None)) with
        {
            Secrets = BindSecrets(caller, request.Secrets, request.Env),
        };
        RequireSecretsFor(caller.KeyId, network);

        var image = snapshot is not null ? _images.Resolve(snapshot.Image) : _images.Resolve(caller, requestedImage);
        var imageName = image.Name;

        // A sandbox started ahead, when the request asks for nothing it cannot take on.
        if (caller.KeyId != PoolOwner && Poolable(request, cpu, memory, disk, pids)
            && await ClaimAsync(caller, request, imageName, timers, timeout, cancellationToken) is { } claimed)
        {
            return claimed;
        }

        var volumes = ResolveVolumes(caller, request.Volumes);
        var record = new SandboxRecord
        {
            Id = RandomNumberGenerator.GetString(IdAlphabet, 20),
            Owner = caller.KeyId,
            Image = imageName,
            Runtime = _runtime.Name,
            Cpu = cpu,
            MemoryMiB = memory,
            DiskMiB = disk,
            MaxProcesses = pids,
            User = snapshot?.User ?? image.User,
            Snapshots = snapshot?.Layers ?? image.Snapshots,
            Volumes = volumes,
            Env = request.Env ?? new Dictionary<string, string>(),
            Timers = timers,
            CreatedAt = DateTimeOffset.UtcNow,
            TimeoutSeconds = timeout,
            Metadata = request.BuildOf is { } build
                ? new Dictionary<string, string>(request.Metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal) { [BuildMetadata] = build }
                : request.Metadata ?? new Dictionary<string, string>(),
            PublicPorts = request.PublicPorts,
            Network = network,
        };

        // Held until the sandbox runs, so a destroy that arrives meanwhile waits for a whole sandbox to remove.
        var cold = caller.KeyId != PoolOwner;
        if (cold)
        {
            Interlocked.Increment(ref _coldCreates);
        }

        Sandbox created;
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            await CreateAdmittedAsync(caller, request, record, image, cancellationToken);
            created = record.ToView();
        }
        finally
        {
            record.Lifecycle.Release();
            if (cold)
            {
                Interlocked.Decrement(ref _coldCreates);
            }
        }

        if (image.StartCmd is not null)
        {
            await StartImageCommandAsync(caller, record, image, cancellationToken);
        }

        return created;
    }

    private async Task CreateAdmittedAsync(CallerIdentity caller, NewSandbox request, SandboxRecord record, ImageInfo image, CancellationToken cancellationToken)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var source = record.Snapshots.Count > 0 ? "snapshot" : "image";
        var counted = record.Owner != PoolOwner; // a pool's sandbox counts as created when it is taken
        // Admission is serialised only for the count check, not for the creation itself.
        await _admission.WaitAsync(cancellationToken);
        try
        {
            Admit(caller, record);
            _live[record.Id] = record;
        }
        finally
        {
            _admission.Release();
        }

        // The image's environment; when the proxy is to open some of its HTTPS, the variables that make clients
        // trust the egress CA (where the image sets none); the request's; each secret's placeholder. Sandboxes
        // without secrets or header rules keep their clients' own trust (pip --cert, a session's own CA).
        var env = new Dictionary<string, string>(image.Env, StringComparer.Ordinal);
        var layers = _images.LayerPaths(image);
        if (_runtime.HasNetwork && record.Network.Intercepts)
        {
            foreach (var (key, value) in EgressTrust.Environment)
            {
                env.TryAdd(key, value);
            }
        }

        foreach (var (key, value) in request.Env ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }

        foreach (var binding in record.Network.Secrets)
        {
            env[binding.Env] = binding.Placeholder;
        }

        try
        {
            _store.SaveSandbox(record);
            await _runtime.CreateAsync(new SandboxSpec
            {
                Id = record.Id,
                Layers = layers,
                Snapshots = record.Snapshots,
                SnapshotsOfImage = record.Snapshots.SequenceEqual(image.Snapshots),
                Volumes = [.. record.Volumes.Select(v => new VolumeMount(v.Volume, v.Path, v.ReadOnly))],
                Limits = new SandboxLimits { Cpus = record.Cpu, MemoryMiB = record.MemoryMiB, DiskMiB = record.DiskMiB, MaxProcesses = record.MaxProcesses },
                Env = env,
                User = record.User,
                WorkingDir = image.WorkingDir,
                Network = record.Network.ToRuntime(),
                Files = _runtime.HasNetwork ? _trust.FilesFor(layers) : [],
            }, cancellationToken);
        }
        catch (Exception ex)
        {
            _live.TryRemove(record.Id, out _);
            record.State = SandboxState.Ended;
            record.EndedAt = DateTimeOffset.UtcNow;
            record.EndReason = EndReason.Failed;
            _store.SaveSandbox(record);
            var detail = ex is SandboxRuntimeException sre ? sre.Detail ?? sre.Message : ex.Message;
            _store.AddEvent(record.Id, "failed", "Creation failed: " + (ex is SandboxRuntimeException ? ex.Message : "internal error"));
            LogCreateFailed(record.Id, detail);
            if (counted)
            {
                _metrics.CreateFailed(record.Image, source);
            }

            if (ex is OperationCanceledException)
            {
                throw;
            }

            throw ex is SandboxRuntimeException
                ? new CordonException(ErrorCode.RuntimeFailed, ex.Message, ex) { RetryAfterSeconds = 5 }
                : new CordonException(ErrorCode.CreateFailed, "The sandbox could not be created; the server log has the details. Retry, or report it if it persists.", ex);
        }

        record.State = SandboxState.Running;
        record.Starts++;
        record.ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(record.TimeoutSeconds);
        if (counted)
        {
            _metrics.Created(record.Image, source, System.Diagnostics.Stopwatch.GetElapsedTime(started));
        }

        _store.SaveSandbox(record, "started",
            $"Started from {(record.Snapshots.Count > 0 ? $"snapshot {record.Snapshots[^1]} of image '{record.Image}'" : $"image '{record.Image}'")} with {record.Cpu} CPU, {record.MemoryMiB} MiB memory, {record.DiskMiB} MiB disk, network: {Describe(record.Network)}; expires in {record.TimeoutSeconds} s; {DescribeTimers(record.Timers)}.",
            caller.KeyId, "sandbox.create", record.Image);

        // The agent finishes starting while the answer travels to the client (its first request queues in the
        // agent's socket meanwhile); a sandbox whose agent never answers is removed, and its history says so.
        _ = VerifyAgentAsync(record);
    }

    /// <summary>Removes the sandbox as failed unless its agent answers within <see cref="CordonOptions.AgentStartTimeout"/>.</summary>
    /// <remarks>Any answer proves the agent runs, so the explicit check waits <see cref="CordonOptions.AgentCheckDelay"/>
    /// and is skipped when the sandbox's first request was answered meanwhile. Sent at once, it reached the agent
    /// just as that agent was finishing its start and its first command was arriving: in a fresh NativeAOT process
    /// the check was served first, and that command waited for it (~0.9 ms of create → first command).</remarks>
    /// <para>Each start of a sandbox checks its own agent: a check still in flight when the sandbox was stopped and
    /// started again leaves the new start alone. An agent that does not answer after a start (not a create) stops the
    /// sandbox, its files kept.</para>
    /// <param name="restarted">The sandbox was started again (not created).</param>
    private async Task VerifyAgentAsync(SandboxRecord record, bool restarted = false)
    {
        var start = record.Starts;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        timeout.CancelAfter(_options.AgentStartTimeout);
        try
        {
            await Task.Delay(_options.AgentCheckDelay, timeout.Token);

            // Only a running sandbox can answer: a paused one's agent is frozen, an ended one is gone.
            if (record.AgentAnswered || record.State != SandboxState.Running || record.Starts != start)
            {
                return;
            }

            await AgentOf(record).InfoAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or AgentErrorException or IOException or SandboxRuntimeException or InvalidDataException)
        {
            if (_stopping.IsCancellationRequested || record.State != SandboxState.Running || record.Starts != start)
            {
                return; // the server is stopping, or the sandbox was paused (its agent froze mid-check), stopped or destroyed
            }

            LogAgentDidNotStart(record.Id, ex.Message);
            try
            {
                await record.Lifecycle.WaitAsync();
                try
                {
                    if (record.State == SandboxState.Running && record.Starts == start && !record.AgentAnswered && restarted)
                    {
                        await StopLockedAsync(record, "Stopped because its agent did not answer after it started again; its files are kept. The server log has the details; start it again or destroy it.");
                    }
                    else if (record.State == SandboxState.Running && record.Starts == start && !record.AgentAnswered)
                    {
                        await _runtime.DestroyAsync(record.Id, CancellationToken.None);
                        End(record, EndReason.Failed);
                    }
                }
                finally
                {
                    record.Lifecycle.Release();
                }
            }
            catch (SandboxRuntimeException destroy)
            {
                LogCreateFailed(record.Id, destroy.Detail ?? destroy.Message);
            }
        }
    }

    /// <summary>Destroys a sandbox. Idempotent: an ended sandbox stays ended.</summary>
    /// <param name="via">The interface that asked (for the history), e.g. "MCP".</param>
    public async Task DestroyAsync(CallerIdentity caller, string id, string? via, CancellationToken cancellationToken)
    {
        var record = Find(caller, id);
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (record.State == SandboxState.Ended)
            {
                return;
            }

            // Every process is dead when this returns; the mounts, the cgroup and the files go right after,
            // in the background (a crash in between leaves leftovers that the next start removes).
            await RuntimeCallAsync(() => _runtime.StopAsync(id, CancellationToken.None));
            End(record, EndReason.Deleted, via is null ? null : $"Destroyed on request through {via}.");
            _store.Audit(caller.KeyId, "sandbox.destroy", id, via);
            _cleanups[id] = CleanUpAsync(id);
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    private async Task CleanUpAsync(string id)
    {
        await Task.Yield();
        try
        {
            await _runtime.DestroyAsync(id, CancellationToken.None);
        }
        catch (SandboxRuntimeException ex)
        {
            LogCleanupFailed(id, ex.Detail ?? ex.Message);
        }
        finally
        {
            _cleanups.TryRemove(id, out _);
        }
    }

    /// <summary>Waits for the cleanups of destroyed sandboxes still in progress.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await StopPoolsAsync();
        await Task.WhenAll(_cleanups.Values);
        _stopping.Dispose();
    }

    /// <summary>Freezes every process of the sandbox where it stands. Pausing a paused (or stopped) sandbox does nothing.</summary>
    public async Task<Sandbox> PauseAsync(CallerIdentity caller, string id, CancellationToken cancellationToken, string? via = null)
    {
        var record = Find(caller, id);
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            await PauseLockedAsync(record, $"Paused on request{Through(via)}: every process is frozen where it stands.", cancellationToken);
            return record.ToView();
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    /// <summary>Thaws a paused sandbox (or starts a stopped one) and restarts its timeout. Resuming a running sandbox
    /// does nothing.</summary>
    public Task<Sandbox> ResumeAsync(CallerIdentity caller, string id, CancellationToken cancellationToken, string? via = null)
        => StartAsync(caller, id, via, cancellationToken);

    /// <summary>Sets the sandbox to expire <paramref name="seconds"/> from now (from its resume, while paused).</summary>
    public Sandbox SetTimeout(CallerIdentity caller, string id, int seconds)
    {
        Require(seconds >= 1 && seconds <= _options.MaxTimeoutSeconds, $"timeoutSeconds must be between 1 and {_options.MaxTimeoutSeconds}; {seconds} was asked.");
        var record = Find(caller, id);
        if (record.State == SandboxState.Ended)
        {
            throw NotLive(record);
        }

        record.TimeoutSeconds = seconds;
        if (record.State == SandboxState.Running)
        {
            record.ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(seconds);
        }

        _store.SaveSandbox(record, "timeout", $"Timeout set: expires {seconds} s from now.");
        return record.ToView();
    }

    private void End(SandboxRecord record, EndReason reason, string? message = null)
    {
        record.State = SandboxState.Ended;
        record.EndedAt = DateTimeOffset.UtcNow;
        record.EndReason = reason;
        record.ExpiresAt = null;
        if (record.Owner != PoolOwner)
        {
            _metrics.Ended(reason.ToString().ToLowerInvariant());
        }

        // The end and why, together: a reader that sees the sandbox ended finds the reason in its history.
        _store.SaveSandbox(record, reason.ToString().ToLowerInvariant(), message ?? reason switch
        {
            EndReason.Expired => $"Destroyed because its timeout of {record.TimeoutSeconds} s passed. Extend a sandbox's life by setting a new timeout before it passes.",
            EndReason.Lost => "The sandbox was no longer running when the server started (host reboot or crash); its resources were removed.",
            EndReason.Failed => "The sandbox's agent did not start; the sandbox was removed. The server log has the details.",
            EndReason.Exited => "The sandbox ended because its agent (PID 1) exited while it ran: the out-of-memory killer took it, or it crashed. Everything in the sandbox stopped with it; create a new one (with more memory if its commands used all of it).",
            _ => "Destroyed on request.",
        });
        _live.TryRemove(record.Id, out _);
        _commands.ForgetSandbox(record.Id);
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Sandbox {Id} could not be created: {Detail}")]
    private partial void LogCreateFailed(string id, string detail);

    [LoggerMessage(EventId = 4008, Level = LogLevel.Error, Message = "The agent of sandbox {Id} did not answer after start: {Message}")]
    private partial void LogAgentDidNotStart(string id, string message);

    [LoggerMessage(EventId = 4009, Level = LogLevel.Error, Message = "Cleaning up destroyed sandbox {Id} failed (the next start retries): {Detail}")]
    private partial void LogCleanupFailed(string id, string detail);
}
