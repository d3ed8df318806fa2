using System.Collections.Concurrent;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Runtime;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.State;
using Microsoft.Extensions.Logging;

namespace Cordon.Server.Sandboxes;

/// <summary>Warm pools: per image, sandboxes started ahead with the defaults and handed to a create that asks for
/// nothing a started sandbox cannot take on.</summary>
/// <remarks>
/// A member is a whole sandbox (root, network, cgroups, agent running; for an image with Python, its default code
/// context started), owned by nobody: no key sees, reaches or counts it. A create that asks for the defaults (1 CPU,
/// 512 MiB, 2 GiB disk, 256 processes, the server's network, no snapshot, volumes or secrets) takes one: it becomes
/// the creator's, with the creator's environment (handed to its agent, whose default contexts then start again on
/// first use), metadata, timeout and timers. Anything else is a cold create, as is a create finding the pool empty.
/// Pools refill in the background one sandbox at a time, and only while no create waits, so they never slow one.
/// </remarks>
public sealed partial class SandboxService
{
    /// <summary>The owner of a sandbox waiting in a pool.</summary>
    internal const string PoolOwner = "warm-pool";

    private static readonly CallerIdentity Pool = new(PoolOwner, false);

    private readonly ConcurrentDictionary<string, ConcurrentQueue<SandboxRecord>> _ready = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _poolSizes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, PoolCounters> _poolCounters = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _refillSignal = new(0);
    private int _coldCreates;
    private long _lastClaim;

    /// <summary>How long (ms) the refill leaves the CPUs to a sandbox just taken.</summary>
    private const long RefillPause = 100;
    private Task? _refill;

    /// <summary>The pools: size, ready sandboxes, claims and misses since the server started.</summary>
    public IReadOnlyList<WarmPool> Pools()
        => [.. _poolSizes.Keys.Concat(_ready.Keys).Distinct().Order(StringComparer.Ordinal).Select(PoolView)];

    /// <summary>Sets how many sandboxes of <paramref name="image"/> are kept started (0 ends the pool); kept across
    /// restarts, over the settings.</summary>
    public WarmPool SetPool(CallerIdentity caller, string image, int size)
    {
        if (!caller.Admin)
        {
            throw new CordonException(ErrorCode.AdminRequired, "Warm pools are the server's: changing one needs an admin API key.");
        }

        Images.ImageService.ValidateName(image);
        Require(size is >= 0 and <= CordonOptions.MaxWarmPoolSize, $"size must be between 0 and {CordonOptions.MaxWarmPoolSize}; {size} was asked.");
        if (size > 0)
        {
            _images.Resolve(image); // an image that does not exist (or is not ready) answers here, not in the refill
        }

        _store.SaveWarmPool(image, size);
        _poolSizes[image] = size;
        _store.Audit(caller.KeyId, "pool.set", image, size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _refillSignal.Release();
        return PoolView(image);
    }

    private WarmPool PoolView(string image)
    {
        var counters = _poolCounters.GetOrAdd(image, _ => new PoolCounters());
        return new WarmPool(image, _poolSizes.GetValueOrDefault(image), _ready.TryGetValue(image, out var ready) ? ready.Count : 0,
            Interlocked.Read(ref counters.Claims), Interlocked.Read(ref counters.Misses));
    }

    /// <summary>Whether a create asks for exactly what a pool's sandboxes are.</summary>
    private bool Poolable(NewSandbox request, double cpu, long memory, long disk, int pids)
        => request.Snapshot is null && request.Network is null && request.Secrets is not { Count: > 0 } && request.Volumes is not { Count: > 0 }
           && cpu == PoolCpu && memory == PoolMemoryMiB && disk == PoolDiskMiB && pids == PoolProcesses;

    private const double PoolCpu = 1;
    private const long PoolMemoryMiB = 512;
    private const long PoolDiskMiB = 2048;
    private const int PoolProcesses = 256;

    /// <summary>Hands a ready sandbox of the pool to the caller, or returns null (the pool is empty, or the sandbox
    /// could not be handed over: the create goes on cold).</summary>
    private async Task<Sandbox?> ClaimAsync(CallerIdentity caller, NewSandbox request, string image, SandboxTimers timers, int timeout, CancellationToken cancellationToken)
    {
        if (_poolSizes.GetValueOrDefault(image) <= 0 && !_ready.ContainsKey(image))
        {
            return null;
        }

        var counters = _poolCounters.GetOrAdd(image, _ => new PoolCounters());
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (_ready.TryGetValue(image, out var queue) && queue.TryDequeue(out var member))
        {
            _refillSignal.Release();
            if (member.State != SandboxState.Running || !_live.TryGetValue(member.Id, out var live) || !ReferenceEquals(live, member))
            {
                continue; // ended while it waited (its agent died): the next one
            }

            var record = new SandboxRecord
            {
                Id = member.Id,
                Owner = caller.KeyId,
                Image = member.Image,
                Runtime = member.Runtime,
                Cpu = member.Cpu,
                MemoryMiB = member.MemoryMiB,
                DiskMiB = member.DiskMiB,
                MaxProcesses = member.MaxProcesses,
                User = member.User,
                Env = request.Env ?? new Dictionary<string, string>(),
                Timers = timers,
                CreatedAt = DateTimeOffset.UtcNow,
                TimeoutSeconds = timeout,
                Metadata = request.Metadata ?? new Dictionary<string, string>(),
                PublicPorts = request.PublicPorts,
                Network = member.Network,
                State = SandboxState.Running,
                Starts = member.Starts,
            };

            await record.Lifecycle.WaitAsync(cancellationToken);
            try
            {
                // Admitted as any create (the caller's quotas); it already counts against the server's most.
                await _admission.WaitAsync(cancellationToken);
                try
                {
                    _live.TryRemove(member.Id, out _);
                    try
                    {
                        Admit(caller, record);
                    }
                    catch
                    {
                        _live[member.Id] = member;
                        queue.Enqueue(member);
                        throw;
                    }

                    _live[record.Id] = record;
                }
                finally
                {
                    _admission.Release();
                }

                try
                {
                    if (record.Env.Count > 0)
                    {
                        await AgentFailures.CallAsync(() => AgentOf(record).ConfigureAsync(record.Env, cancellationToken));
                    }
                }
                catch (CordonException ex)
                {
                    // Not handed over after all: removed, and the create goes on cold.
                    LogClaimFailed(record.Id, ex.Message);
                    await RuntimeCallAsync(() => _runtime.StopAsync(record.Id, CancellationToken.None));
                    End(record, EndReason.Failed, "A sandbox of the warm pool could not take its creator's settings and was removed.");
                    _cleanups[record.Id] = CleanUpAsync(record.Id);
                    continue;
                }

                // The pool's record is done with: what still holds it (its agent check) leaves the sandbox alone.
                member.State = SandboxState.Ended;
                Volatile.Write(ref _lastClaim, Environment.TickCount64);
                record.AgentAnswered = true;
                record.ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(timeout);
                Interlocked.Increment(ref counters.Claims);
                _metrics.PoolClaim(image, hit: true);
                _metrics.Created(image, "pool", System.Diagnostics.Stopwatch.GetElapsedTime(started));
                _store.SaveSandbox(record, "started",
                    $"Taken from the warm pool of image '{record.Image}' (started ahead, {Describe(record.Network)}); expires in {record.TimeoutSeconds} s; {DescribeTimers(record.Timers)}.",
                    caller.KeyId, "sandbox.create", record.Image);
                return record.ToView();
            }
            finally
            {
                record.Lifecycle.Release();
            }
        }

        Interlocked.Increment(ref counters.Misses);
        _metrics.PoolClaim(image, hit: false);
        _refillSignal.Release();
        return null;
    }

    /// <summary>Starts the refill (after reconciliation): sizes from the settings, then those set through the API.</summary>
    private void StartPools()
    {
        foreach (var (image, size) in _options.WarmPools)
        {
            _poolSizes[image] = Math.Clamp(size, 0, CordonOptions.MaxWarmPoolSize);
        }

        foreach (var (image, size) in _store.LoadWarmPools())
        {
            _poolSizes[image] = size;
        }

        _refill ??= Task.Run(RefillAsync);
    }

    private async Task RefillAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await _refillSignal.WaitAsync(TimeSpan.FromSeconds(1), token);
                foreach (var image in _poolSizes.Keys.Concat(_ready.Keys).Distinct().ToList())
                {
                    await RefillAsync(image, token);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex)
            {
                // An image that is not there (yet), a host that cannot create right now: tried again in a while.
                LogRefillFailed(ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(5), token).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private async Task RefillAsync(string image, CancellationToken cancellationToken)
    {
        var queue = _ready.GetOrAdd(image, _ => new ConcurrentQueue<SandboxRecord>());
        while (queue.Count > _poolSizes.GetValueOrDefault(image) && queue.TryDequeue(out var extra))
        {
            await DestroyAsync(CallerIdentity.System, extra.Id, "the warm pool shrinking", cancellationToken);
        }

        while (queue.Count < _poolSizes.GetValueOrDefault(image) && !cancellationToken.IsCancellationRequested)
        {
            // An image still being made (the default one, the first time) is waited for without a word.
            if (_images.Find(image)?.Status != Images.ImageStates.Ready)
            {
                return;
            }

            // Creates that a caller waits for go first, and a sandbox just taken gets its first commands in before
            // the refill competes with them for the CPUs.
            if (Volatile.Read(ref _coldCreates) > 0 || Environment.TickCount64 - Volatile.Read(ref _lastClaim) < RefillPause)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken);
                continue;
            }

            var sandbox = await CreateAsync(Pool, new NewSandbox
            {
                Image = image,
                TimeoutSeconds = _options.MaxTimeoutSeconds,
            }, cancellationToken);
            var member = _live[sandbox.Id];
            member.ExpiresAt = null; // it waits for as long as it takes
            await WarmCodeAsync(member, cancellationToken);

            // The pool may have shrunk while this one started: then it is not handed out.
            if (queue.Count >= _poolSizes.GetValueOrDefault(image))
            {
                await DestroyAsync(CallerIdentity.System, member.Id, "the warm pool shrinking", cancellationToken);
                break;
            }

            queue.Enqueue(member);
        }
    }

    /// <summary>Starts the default Python context of a pool's sandbox, so its creator's first code runs at once (an
    /// image without Python simply has none to start).</summary>
    private async Task WarmCodeAsync(SandboxRecord member, CancellationToken cancellationToken)
    {
        try
        {
            await using var run = await AgentOf(member).StartCodeAsync(new RunCodeRequest { Language = "python", Code = "None" }, cancellationToken);
            await foreach (var _ in run.ReadEventsAsync(cancellationToken))
            {
            }
        }
        catch (Exception ex) when (ex is Runtime.Agent.AgentErrorException or IOException)
        {
        }
    }

    /// <summary>At shutdown: the refill ends and the pools' sandboxes go (they are nobody's, and the next start would
    /// remove them anyway; a server whose data directory goes with it must not leave them running).</summary>
    private async Task StopPoolsAsync()
    {
        if (_refill is not null)
        {
            await _refill;
        }

        try
        {
            await RemoveLeftoverPoolMembersAsync(CancellationToken.None);
        }
        catch (CordonException ex)
        {
            LogRefillFailed("removing the pools' sandboxes at shutdown: " + ex.Message);
        }
    }

    /// <summary>Sandboxes a pool of an earlier run left: removed (what was started in them is not known).</summary>
    private async Task RemoveLeftoverPoolMembersAsync(CancellationToken cancellationToken)
    {
        foreach (var record in _live.Values.Where(r => r.Owner == PoolOwner).ToList())
        {
            await DestroyAsync(CallerIdentity.System, record.Id, "the server's start (a warm-pool sandbox of an earlier run)", cancellationToken);
        }
    }

    private sealed class PoolCounters
    {
        public long Claims;
        public long Misses;
    }

    [LoggerMessage(EventId = 4030, Level = LogLevel.Warning, Message = "A warm-pool sandbox {Id} could not be handed over: {Message}")]
    private partial void LogClaimFailed(string id, string message);

    [LoggerMessage(EventId = 4031, Level = LogLevel.Warning, Message = "Refilling a warm pool failed (tried again in 5 s): {Message}")]
    private partial void LogRefillFailed(string message);
}
