using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Runtime;
using Cordon.Runtime.Agent;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Images;
using Cordon.Server.State;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Sandboxes;

/// <summary>The one service layer: every interface (REST, MCP, compatibility APIs) calls this, and only
/// this touches the runtime, the state store and the images.</summary>
public sealed partial class SandboxService : IAsyncDisposable
{
    private const string IdAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    private readonly StateStore _store;
    private readonly ISandboxRuntime _runtime;
    private readonly ImageService _images;
    private readonly CordonOptions _options;
    private readonly ILogger<SandboxService> _logger;
    private readonly ConcurrentDictionary<string, SandboxRecord> _live = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _admission = new(1, 1);
    private readonly ConcurrentDictionary<string, Task> _cleanups = new(StringComparer.Ordinal);

    /// <summary>Cancelled when the service stops: checks still pending then leave their sandboxes alone.</summary>
    private readonly CancellationTokenSource _stopping = new();

    public SandboxService(StateStore store, ISandboxRuntime runtime, ImageService images, IOptions<CordonOptions> options, ILogger<SandboxService> logger)
    {
        _store = store;
        _runtime = runtime;
        _images = images;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>Sandboxes that exist now (creating, running or paused).</summary>
    public int LiveCount => _live.Count;

    public IEnumerable<string> ImagesInUse => _live.Values.Select(r => r.Image).Distinct();

    // ---- lifecycle ------------------------------------------------------------------------------

    public async Task<SandboxRecord> CreateAsync(CallerIdentity caller, CreateSandboxRequest request, CancellationToken cancellationToken)
    {
        var imageName = request.Image ?? _options.DefaultImage;
        ImageService.ValidateName(imageName);
        var cpu = request.Cpu ?? 1;
        var memory = request.MemoryMiB ?? 512;
        var disk = request.DiskMiB ?? 2048;
        var pids = request.MaxProcesses ?? 256;
        var timeout = request.TimeoutSeconds ?? _options.DefaultTimeoutSeconds;
        Require(cpu >= 0.05 && cpu <= _options.MaxCpu, $"cpu must be between 0.05 and {_options.MaxCpu} (cores of this host); {cpu} was asked.");
        Require(memory >= 32 && memory <= _options.MaxMemoryMiB, $"memoryMiB must be between 32 and {_options.MaxMemoryMiB}; {memory} was asked.");
        Require(disk >= 16 && disk <= _options.MaxDiskMiB, $"diskMiB must be between 16 and {_options.MaxDiskMiB}; {disk} was asked.");
        Require(pids >= 8 && pids <= _options.MaxProcesses, $"maxProcesses must be between 8 and {_options.MaxProcesses}; {pids} was asked.");
        Require(timeout >= 1 && timeout <= _options.MaxTimeoutSeconds, $"timeoutSeconds must be between 1 and {_options.MaxTimeoutSeconds}; {timeout} was asked.");
        ValidateEnvironment(request.Env, "env");
        ValidateMetadata(request.Metadata);

        var image = _images.Resolve(imageName);
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
            CreatedAt = DateTimeOffset.UtcNow,
            TimeoutSeconds = timeout,
            Metadata = request.Metadata ?? new Dictionary<string, string>(),
        };

        // Held until the sandbox runs, so a destroy that arrives meanwhile waits for a whole sandbox to remove.
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            return await CreateAdmittedAsync(caller, request, record, image, cancellationToken);
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    private async Task<SandboxRecord> CreateAdmittedAsync(CallerIdentity caller, CreateSandboxRequest request, SandboxRecord record, ImageInfo image, CancellationToken cancellationToken)
    {
        // Admission is serialised only for the count check, not for the creation itself.
        await _admission.WaitAsync(cancellationToken);
        try
        {
            if (_live.Count >= _options.MaxSandboxes)
            {
                throw new CordonException("quota_exceeded", 429, $"This server already runs its maximum of {_options.MaxSandboxes} sandboxes: destroy unused ones (GET /v1/sandboxes lists them) and retry.") { RetryAfterSeconds = 5 };
            }

            _live[record.Id] = record;
        }
        finally
        {
            _admission.Release();
        }

        var env = new Dictionary<string, string>(image.Env, StringComparer.Ordinal);
        foreach (var (key, value) in request.Env ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }

        try
        {
            _store.SaveSandbox(record);
            var spec = new SandboxSpec
            {
                Id = record.Id,
                Layers = _images.LayerPaths(image),
                Limits = new SandboxLimits { Cpus = record.Cpu, MemoryMiB = record.MemoryMiB, DiskMiB = record.DiskMiB, MaxProcesses = record.MaxProcesses },
                Env = env,
                User = image.User,
                WorkingDir = image.WorkingDir,
            };
            await _runtime.CreateAsync(spec, cancellationToken);
        }
        catch (Exception ex)
        {
            _live.TryRemove(record.Id, out _);
            record.State = SandboxStates.Ended;
            record.EndedAt = DateTimeOffset.UtcNow;
            record.EndReason = EndReasons.Failed;
            _store.SaveSandbox(record);
            var detail = ex is SandboxRuntimeException sre ? sre.Detail ?? sre.Message : ex.Message;
            _store.AddEvent(record.Id, "failed", "Creation failed: " + (ex is SandboxRuntimeException ? ex.Message : "internal error"));
            LogCreateFailed(record.Id, detail);
            if (ex is OperationCanceledException)
            {
                throw;
            }

            throw ex is SandboxRuntimeException
                ? new CordonException("runtime_failed", 503, ex.Message) { RetryAfterSeconds = 5 }
                : new CordonException("create_failed", 503, "The sandbox could not be created; the server log has the details. Retry, or report it if it persists.");
        }

        record.State = SandboxStates.Running;
        record.ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(record.TimeoutSeconds);
        _store.SaveSandbox(record, "started",
            $"Started from image '{record.Image}' with {record.Cpu} CPU, {record.MemoryMiB} MiB memory, {record.DiskMiB} MiB disk; expires in {record.TimeoutSeconds} s.",
            caller.KeyId, "sandbox.create", record.Image);

        // The agent finishes starting while the answer travels to the client (its first request queues in the
        // agent's socket meanwhile); a sandbox whose agent never answers is removed, and its history says so.
        _ = VerifyAgentAsync(record);
        return record;
    }

    /// <summary>Removes the sandbox as failed unless its agent answers within <see cref="CordonOptions.AgentStartTimeout"/>.</summary>
    /// <remarks>Any answer proves the agent runs, so the explicit check waits <see cref="CordonOptions.AgentCheckDelay"/>
    /// and is skipped when the sandbox's first request was answered meanwhile. Sent at once, it reached the agent
    /// just as that agent was finishing its start and its first command was arriving: in a fresh NativeAOT process
    /// the check was served first, and that command waited for it (~0.9 ms of create → first command).</remarks>
    private async Task VerifyAgentAsync(SandboxRecord record)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        timeout.CancelAfter(_options.AgentStartTimeout);
        try
        {
            await Task.Delay(_options.AgentCheckDelay, timeout.Token);

            // Only a running sandbox can answer: a paused one's agent is frozen, an ended one is gone.
            if (record.AgentAnswered || record.State != SandboxStates.Running)
            {
                return;
            }

            await AgentOf(record).InfoAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or AgentErrorException or IOException or SandboxRuntimeException or InvalidDataException)
        {
            if (_stopping.IsCancellationRequested || record.State != SandboxStates.Running)
            {
                return; // the server is stopping, or the sandbox was paused (its agent froze mid-check) or destroyed
            }

            LogAgentDidNotStart(record.Id, ex.Message);
            try
            {
                await record.Lifecycle.WaitAsync();
                try
                {
                    if (record.State == SandboxStates.Running)
                    {
                        await _runtime.DestroyAsync(record.Id, CancellationToken.None);
                        End(record, EndReasons.Failed);
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
    public async Task DestroyAsync(CallerIdentity caller, string id, string reason, CancellationToken cancellationToken)
    {
        var record = Get(caller, id);
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (record.State == SandboxStates.Ended)
            {
                return;
            }

            // Every process is dead when this returns; the mounts, the cgroup and the files go right after,
            // in the background (a crash in between leaves leftovers that the next start removes).
            await RuntimeCallAsync(() => _runtime.StopAsync(id, CancellationToken.None));
            End(record, reason);
            _store.Audit(caller.KeyId, "sandbox.destroy", id, reason);
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
        await Task.WhenAll(_cleanups.Values);
        _stopping.Dispose();
    }

    public async Task<SandboxRecord> PauseAsync(CallerIdentity caller, string id, CancellationToken cancellationToken)
    {
        var record = Get(caller, id);
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            switch (record.State)
            {
                case SandboxStates.Paused:
                    return record;
                case SandboxStates.Running:
                    await RuntimeCallAsync(() => _runtime.PauseAsync(id, cancellationToken));
                    record.State = SandboxStates.Paused;
                    record.ExpiresAt = null; // a paused sandbox does not expire; resuming restarts its timeout
                    _store.SaveSandbox(record);
                    _store.AddEvent(id, "paused", "Paused: every process is frozen where it stands.");
                    return record;
                default:
                    throw NotLive(record);
            }
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    public async Task<SandboxRecord> ResumeAsync(CallerIdentity caller, string id, CancellationToken cancellationToken)
    {
        var record = Get(caller, id);
        await record.Lifecycle.WaitAsync(cancellationToken);
        try
        {
            switch (record.State)
            {
                case SandboxStates.Running:
                    return record;
                case SandboxStates.Paused:
                    await RuntimeCallAsync(() => _runtime.ResumeAsync(id, cancellationToken));
                    record.State = SandboxStates.Running;
                    record.ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(record.TimeoutSeconds);
                    _store.SaveSandbox(record);
                    _store.AddEvent(id, "resumed", $"Resumed; expires in {record.TimeoutSeconds} s.");
                    return record;
                default:
                    throw NotLive(record);
            }
        }
        finally
        {
            record.Lifecycle.Release();
        }
    }

    /// <summary>Sets the sandbox to expire <paramref name="seconds"/> from now.</summary>
    public SandboxRecord SetTimeout(CallerIdentity caller, string id, int seconds)
    {
        Require(seconds >= 1 && seconds <= _options.MaxTimeoutSeconds, $"timeoutSeconds must be between 1 and {_options.MaxTimeoutSeconds}.");
        var record = Get(caller, id);
        if (record.State == SandboxStates.Ended)
        {
            throw NotLive(record);
        }

        record.TimeoutSeconds = seconds;
        if (record.State == SandboxStates.Running)
        {
            record.ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(seconds);
        }

        _store.SaveSandbox(record);
        _store.AddEvent(id, "timeout", $"Timeout set: expires {seconds} s from now.");
        return record;
    }

    // ---- queries --------------------------------------------------------------------------------

    /// <summary>A sandbox the caller may see, live or recently ended.</summary>
    /// <exception cref="CordonException">404 when unknown or another tenant's.</exception>
    public SandboxRecord Get(CallerIdentity caller, string id)
    {
        var record = _live.TryGetValue(id, out var live) ? live : (IsValidId(id) ? _store.LoadSandbox(id) : null);
        if (record is null || !caller.CanSee(record.Owner))
        {
            throw CordonException.NotFound("sandbox_not_found", $"No sandbox '{id}' exists for this API key: list your sandboxes with GET /v1/sandboxes, or create one.");
        }

        return record;
    }

    /// <summary>The caller's sandboxes; live ones unless <paramref name="includeEnded"/>.</summary>
    public IReadOnlyList<SandboxRecord> List(CallerIdentity caller, bool includeEnded, IReadOnlyDictionary<string, string>? metadata)
    {
        var records = includeEnded ? _store.LoadSandboxes() : [.. _live.Values];
        return [.. records
            .Where(r => caller.CanSee(r.Owner))
            .Where(r => metadata is null || metadata.All(m => r.Metadata.TryGetValue(m.Key, out var v) && v == m.Value))
            .OrderBy(r => r.CreatedAt)];
    }

    public IReadOnlyList<SandboxEvent> Events(CallerIdentity caller, string id)
    {
        Get(caller, id);
        return _store.LoadEvents(id);
    }

    public async Task<SandboxMetrics> MetricsAsync(CallerIdentity caller, string id, CancellationToken cancellationToken)
    {
        var record = RequireLive(caller, id);
        var usage = await _runtime.GetUsageAsync(record.Id, cancellationToken)
            ?? throw new CordonException("metrics_unavailable", 503, "The sandbox's resource use cannot be read right now; retry.");
        return new SandboxMetrics(usage.MemoryBytes, usage.MemoryLimitBytes, usage.Processes, usage.CpuSeconds);
    }

    // ---- commands -------------------------------------------------------------------------------

    /// <summary>Turns a REST/MCP command into an agent request, validating every field.</summary>
    public ExecRequest BuildExecRequest(ExecRequestBody body)
    {
        IReadOnlyList<string> argv = body.Cmd.ValueKind switch
        {
            JsonValueKind.String => ["/bin/sh", "-c", body.Cmd.GetString()!],
            JsonValueKind.Array when body.Cmd.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)
                => [.. body.Cmd.EnumerateArray().Select(e => e.GetString()!)],
            _ => throw CordonException.Invalid("cmd must be an array of strings (argv, e.g. [\"ls\", \"-l\"]) or one shell string (e.g. \"ls -l | wc -l\")."),
        };
        Require(argv.Count > 0 && argv[0].Length > 0 && (body.Cmd.ValueKind != JsonValueKind.String || argv[2].Trim().Length > 0), "cmd is empty: give the program to run.");
        Require(argv.All(a => !a.Contains('\0', StringComparison.Ordinal)), "cmd contains a NUL character.");
        Require(argv.Sum(a => a.Length) < 1 << 20, "cmd is longer than 1 MiB: write a script file and run that.");
        ValidateEnvironment(body.Env, "env");
        if (body.Cwd is not null && SandboxPaths.Validate(body.Cwd) is { } cwdProblem)
        {
            throw CordonException.Invalid("cwd: " + cwdProblem);
        }

        var timeout = body.TimeoutSeconds ?? _options.DefaultCommandTimeoutSeconds;
        Require(timeout >= 1 && timeout <= _options.MaxTimeoutSeconds, $"timeoutSeconds must be between 1 and {_options.MaxTimeoutSeconds}.");
        if (body.User is not null)
        {
            Require(body.User.Length is > 0 and < 65 && !body.User.Contains('\0', StringComparison.Ordinal), "user must be a user name or uid inside the sandbox.");
        }

        return new ExecRequest
        {
            Argv = argv,
            Env = body.Env,
            Cwd = body.Cwd,
            User = body.User,
            TimeoutMs = timeout * 1000L,
            Stdin = body.Stdin is not null,
        };
    }

    /// <summary>Starts a command and returns its live session (the caller streams it).</summary>
    public async Task<ExecSession> StartExecAsync(CallerIdentity caller, string id, ExecRequest request, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        return await AgentCallAsync(() => client.StartExecAsync(request, cancellationToken));
    }

    /// <summary>Runs a command to its end and returns its (capped) output.</summary>
    public async Task<ExecResult> ExecAsync(CallerIdentity caller, string id, ExecRequestBody body, CancellationToken cancellationToken)
    {
        var request = BuildExecRequest(body);
        await using var session = await StartExecAsync(caller, id, request, cancellationToken);
        if (body.Stdin is not null)
        {
            await session.WriteStdinAsync(System.Text.Encoding.UTF8.GetBytes(body.Stdin), cancellationToken);
            await session.CloseStdinAsync(cancellationToken);
        }

        var stdout = new CappedOutput(_options.MaxExecOutputBytes);
        var stderr = new CappedOutput(_options.MaxExecOutputBytes);
        ExitMessage? exit = null;
        await AgentCallAsync(async () =>
        {
            await foreach (var e in session.ReadEventsAsync(cancellationToken))
            {
                switch (e.Kind)
                {
                    case ExecEventKind.Stdout:
                        stdout.Append(e.Data);
                        break;
                    case ExecEventKind.Stderr:
                        stderr.Append(e.Data);
                        break;
                    case ExecEventKind.Exit:
                        exit = e.Exit;
                        break;
                }
            }

            return true;
        });

        return new ExecResult
        {
            ExitCode = exit!.ExitCode,
            Signal = exit.Signal,
            TimedOut = exit.TimedOut,
            DurationMs = exit.DurationMs,
            Stdout = stdout.ToText(),
            Stderr = stderr.ToText(),
            OutputTruncated = stdout.Truncated || stderr.Truncated,
        };
    }

    /// <summary>Starts watching a directory in the sandbox.</summary>
    public Task<WatchSession> WatchDirectoryAsync(CallerIdentity caller, string id, string? path, bool recursive, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        return AgentCallAsync(() => client.WatchAsync(valid, recursive, cancellationToken));
    }

    /// <summary>A TCP connection to a port on the sandbox's own loopback, carried by its agent.</summary>
    public Task<TunnelStream> ConnectPortAsync(CallerIdentity caller, string id, int port, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        Require(port is >= 1 and <= 65535, $"port {port} is not a TCP port (1-65535).");
        return AgentCallAsync(() => client.ConnectPortAsync(port, cancellationToken), "port_closed");
    }

    // ---- files ----------------------------------------------------------------------------------

    public Task<FileDownload> ReadFileAsync(CallerIdentity caller, string id, string? path, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        return AgentCallAsync(() => client.ReadFileAsync(valid, cancellationToken));
    }

    public Task<FileEntry> WriteFileAsync(CallerIdentity caller, string id, string? path, Stream content, int? mode, string? user, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        Require(mode is null or (>= 0 and <= 0xFFF), "mode must be a permission value between 0 and 07777.");
        return AgentCallAsync(() => client.WriteFileAsync(new WriteFileRequest { Path = valid, Mode = mode, User = user }, content, cancellationToken));
    }

    public Task<ListResponse> ListFilesAsync(CallerIdentity caller, string id, string? path, int depth, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        Require(depth is >= 1 and <= 32, "depth must be between 1 and 32.");
        return AgentCallAsync(() => client.ListAsync(valid, depth, cancellationToken));
    }

    public Task<FileEntry> StatFileAsync(CallerIdentity caller, string id, string? path, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        return AgentCallAsync(() => client.StatAsync(valid, cancellationToken));
    }

    public Task<FileEntry> MakeDirAsync(CallerIdentity caller, string id, string? path, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        return AgentCallAsync(() => client.MakeDirAsync(valid, null, cancellationToken));
    }

    public Task RemoveFileAsync(CallerIdentity caller, string id, string? path, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        return AgentCallAsync(async () =>
        {
            await client.RemoveAsync(valid, cancellationToken);
            return true;
        });
    }

    public Task<FileEntry> RenameFileAsync(CallerIdentity caller, string id, string? from, string? to, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var validFrom = ValidPath(from);
        var validTo = ValidPath(to);
        return AgentCallAsync(() => client.RenameAsync(validFrom, validTo, cancellationToken));
    }

    // ---- background duties ----------------------------------------------------------------------

    /// <summary>Destroys every running sandbox whose timeout has passed, and forgets long-ended ones.</summary>
    public async Task ExpireDueAsync(CancellationToken cancellationToken)
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var record in _live.Values.Where(r => r.State == SandboxStates.Running && r.ExpiresAt <= now).ToList())
        {
            try
            {
                LogExpired(record.Id);
                await DestroyAsync(CallerIdentity.System, record.Id, EndReasons.Expired, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogExpireFailed(record.Id, ex.Message);
            }
        }

        _store.PurgeEnded(now - _options.EndedRetention);
    }

    /// <summary>Makes the records match what really runs: adopts live sandboxes, ends the ones that are gone,
    /// and removes runtime leftovers no record owns. Runs once at start, before the API accepts work.</summary>
    public async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var found = (await _runtime.ListAsync(cancellationToken)).ToDictionary(s => s.Id, StringComparer.Ordinal);
        var records = _store.LoadSandboxes(SandboxStates.Creating, SandboxStates.Running, SandboxStates.Paused);
        foreach (var record in records)
        {
            found.Remove(record.Id, out var actual);
            var alive = actual is { Status: RuntimeSandboxStatus.Running or RuntimeSandboxStatus.Paused } && record.State != SandboxStates.Creating;
            if (alive && actual!.Status == RuntimeSandboxStatus.Running)
            {
                try
                {
                    await AgentOf(record).InfoAsync(cancellationToken);
                }
                catch (Exception ex) when (ex is SandboxRuntimeException or AgentErrorException or IOException)
                {
                    alive = false;
                }
            }

            if (alive)
            {
                record.State = actual!.Status == RuntimeSandboxStatus.Paused ? SandboxStates.Paused : SandboxStates.Running;
                _live[record.Id] = record;
                _store.SaveSandbox(record);
                _store.AddEvent(record.Id, "adopted", "The server restarted and found the sandbox still running.");
                LogAdopted(record.Id);
                continue;
            }

            // One sandbox that cannot be cleaned up must not keep the server from starting.
            if (await TryDestroyAsync(record.Id, cancellationToken))
            {
                End(record, EndReasons.Lost);
                LogLost(record.Id);
            }
        }

        foreach (var orphan in found.Keys)
        {
            if (await TryDestroyAsync(orphan, cancellationToken))
            {
                _store.Audit("system", "sandbox.orphan_removed", orphan);
                LogOrphan(orphan);
            }
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

    // ---- helpers --------------------------------------------------------------------------------

    private void End(SandboxRecord record, string reason)
    {
        record.State = SandboxStates.Ended;
        record.EndedAt = DateTimeOffset.UtcNow;
        record.EndReason = reason;
        record.ExpiresAt = null;
        _store.SaveSandbox(record);
        _store.AddEvent(record.Id, reason, reason switch
        {
            EndReasons.Expired => $"Destroyed because its timeout of {record.TimeoutSeconds} s passed. Extend a sandbox's life with POST /v1/sandboxes/{{id}}/timeout.",
            EndReasons.Lost => "The sandbox was no longer running when the server started (host reboot or crash); its resources were removed.",
            EndReasons.Failed => "The sandbox's agent did not start; the sandbox was removed. The server log has the details.",
            _ => "Destroyed on request.",
        });
        _live.TryRemove(record.Id, out _);
    }

    private SandboxRecord RequireLive(CallerIdentity caller, string id)
    {
        var record = Get(caller, id);
        return record.State switch
        {
            SandboxStates.Running => record,
            SandboxStates.Paused => throw CordonException.Conflict("sandbox_paused", $"The sandbox '{id}' is paused: resume it (POST /v1/sandboxes/{id}/resume) first."),
            _ => throw NotLive(record),
        };
    }

    private AgentClient Agent(CallerIdentity caller, string id) => AgentOf(RequireLive(caller, id));

    private AgentClient AgentOf(SandboxRecord record)
        => new(ct => _runtime.ConnectAgentAsync(record.Id, ct), () => record.AgentAnswered = true);

    private static CordonException NotLive(SandboxRecord record) => record.State == SandboxStates.Creating
        ? CordonException.Conflict("sandbox_creating", $"The sandbox '{record.Id}' is still being created; retry in a moment.")
        : new CordonException("sandbox_ended", 410, $"The sandbox '{record.Id}' has ended ({record.EndReason}); create a new one.");

    /// <param name="notFoundCode">The API error code for the agent's not-found (the thing the call was about).</param>
    private static async Task<T> AgentCallAsync<T>(Func<Task<T>> call, string notFoundCode = "file_not_found")
    {
        try
        {
            return await call();
        }
        catch (AgentErrorException ex)
        {
            throw ex.Code switch
            {
                AgentErrorCodes.NotFound => CordonException.NotFound(notFoundCode, ex.Message),
                AgentErrorCodes.Conflict => CordonException.Conflict("conflict", ex.Message),
                AgentErrorCodes.InvalidArgument or AgentErrorCodes.NotADirectory or AgentErrorCodes.IsADirectory => CordonException.Invalid(ex.Message),
                AgentErrorCodes.PermissionDenied => new CordonException("permission_denied", 403, ex.Message),
                AgentErrorCodes.AlreadyExists => CordonException.Conflict("already_exists", ex.Message),
                AgentErrorCodes.NoSpace => new CordonException("disk_full", 507, ex.Message),
                _ => new CordonException("agent_error", 502, ex.Message),
            };
        }
        catch (SandboxRuntimeException ex)
        {
            throw new CordonException("sandbox_unreachable", 502, ex.Message);
        }
        catch (IOException ex)
        {
            throw new CordonException("sandbox_unreachable", 502, "The connection to the sandbox broke: " + ex.Message + " The sandbox may have stopped; check GET /v1/sandboxes/{id}.");
        }
    }

    private static async Task RuntimeCallAsync(Func<ValueTask> call)
    {
        try
        {
            await call();
        }
        catch (SandboxRuntimeException ex)
        {
            throw new CordonException("runtime_failed", 503, ex.Message);
        }
    }

    private static string ValidPath(string? path)
        => SandboxPaths.Validate(path) is { } problem ? throw CordonException.Invalid(problem) : SandboxPaths.Normalize(path!);

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw CordonException.Invalid(message);
        }
    }

    private static void ValidateEnvironment(IReadOnlyDictionary<string, string>? env, string field)
    {
        if (env is null)
        {
            return;
        }

        Require(env.Count <= 512, $"{field} has {env.Count} variables; at most 512 are allowed.");
        foreach (var (key, value) in env)
        {
            Require(EnvNameRegex().IsMatch(key), $"{field}: '{key}' is not a valid variable name (letters, digits and '_', not starting with a digit).");
            Require(!key.StartsWith("CORDON_AGENT_", StringComparison.Ordinal), $"{field}: names starting with CORDON_AGENT_ are reserved.");
            Require(value is not null && !value.Contains('\0', StringComparison.Ordinal), $"{field}: the value of '{key}' contains a NUL character.");
            Require(value!.Length <= 128 * 1024, $"{field}: the value of '{key}' is longer than 128 KiB.");
        }
    }

    private static void ValidateMetadata(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is null)
        {
            return;
        }

        Require(metadata.Count <= 64, "metadata may hold at most 64 entries.");
        foreach (var (key, value) in metadata)
        {
            Require(key.Length is > 0 and <= 128, "metadata keys must be 1-128 characters.");
            Require(value is not null && value.Length <= 1024, $"metadata value of '{key}' must be at most 1024 characters.");
        }
    }

    private static bool IsValidId(string id) => id.Length == 20 && id.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c));

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvNameRegex();

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Sandbox {Id} could not be created: {Detail}")]
    private partial void LogCreateFailed(string id, string detail);

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

    [LoggerMessage(EventId = 4008, Level = LogLevel.Error, Message = "The agent of sandbox {Id} did not answer after start: {Message}")]
    private partial void LogAgentDidNotStart(string id, string message);

    [LoggerMessage(EventId = 4009, Level = LogLevel.Error, Message = "Cleaning up destroyed sandbox {Id} failed (the next start retries): {Detail}")]
    private partial void LogCleanupFailed(string id, string detail);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Warning, Message = "Removed orphan sandbox {Id} that no record owns")]
    private partial void LogOrphan(string id);
}
