using System.Collections.Concurrent;
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

/// <summary>The one service layer: every interface (REST, MCP, the E2B-compatible API, the CLI through REST) calls
/// this, and only this touches the runtime, the state store and the images.</summary>
/// <remarks>
/// Its contract is its own: interfaces get immutable <see cref="Sandbox"/> views, commands as
/// <see cref="RunningCommand"/>s whose output is decoded and whose failures are <see cref="CordonException"/>s,
/// and they describe what they want with the service's own request types (<see cref="NewSandbox"/>,
/// <see cref="CommandSpec"/>, <see cref="CodeSpec"/>). The work is split by seam: lifecycle
/// (<c>SandboxService.Lifecycle.cs</c>), commands, files, code, reconciliation and expiry, validation.
/// </remarks>
public sealed partial class SandboxService : IAsyncDisposable
{
    private readonly StateStore _store;
    private readonly ISandboxRuntime _runtime;
    private readonly ImageService _images;
    private readonly CordonOptions _options;
    private readonly ILogger<SandboxService> _logger;
    private readonly BackgroundCommands _commands;
    private readonly OutputBudget _outputBudget;
    private readonly ApiKeyService _keys;
    private readonly Secrets.SecretService _secrets;
    private readonly Network.EgressTrust _trust;
    private readonly Observability.CordonMetrics _metrics;

    /// <summary>Directory watches open now, per sandbox and in all (each holds a connection and a buffer).</summary>
    private readonly Slots _watches;

    /// <summary>Background commands running now, per key (within its quota) and in all.</summary>
    private readonly Slots _commandSlots;
    private readonly ConcurrentDictionary<string, SandboxRecord> _live = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _admission = new(1, 1);
    private readonly ConcurrentDictionary<string, Task> _cleanups = new(StringComparer.Ordinal);

    /// <summary>Cancelled when the service stops: checks still pending then leave their sandboxes alone.</summary>
    private readonly CancellationTokenSource _stopping = new();

    public SandboxService(StateStore store, ISandboxRuntime runtime, ImageService images, ApiKeyService keys, Secrets.SecretService secrets,
        Network.EgressTrust trust, Observability.CordonMetrics metrics, IOptions<CordonOptions> options, ILogger<SandboxService> logger)
    {
        _metrics = metrics;
        _store = store;
        _keys = keys;
        _secrets = secrets;
        _trust = trust;
        _runtime = runtime;
        _images = images;
        _options = options.Value;
        _logger = logger;
        _outputBudget = new OutputBudget((long)_options.MaxOutputMemoryMiB << 19); // characters are 2 bytes
        _commands = new BackgroundCommands(_options.MaxBackgroundOutputChars, _outputBudget);
        _watches = new Slots(_options.MaxWatchesPerSandbox, _options.MaxWatches);
        _commandSlots = new Slots(int.MaxValue, _options.MaxBackgroundCommands);
        _runtime.SandboxExited += OnSandboxExited;
        metrics.ObserveGauges(this);
    }

    /// <summary>Characters of command and code output the server holds now (within <see cref="CordonOptions.MaxOutputMemoryMiB"/>).</summary>
    public long OutputCharsHeld => _outputBudget.Used;

    /// <summary>Sandboxes that exist now (creating, running, paused or stopped).</summary>
    public int LiveCount => _live.Count;

    public IEnumerable<string> ImagesInUse => _live.Values.Select(r => r.Image).Concat(_snapshots.Values.Select(s => s.Image)).Distinct();

    // ---- queries --------------------------------------------------------------------------------

    /// <summary>A sandbox the caller may see, live or recently ended.</summary>
    /// <exception cref="CordonException"><see cref="ErrorCode.SandboxNotFound"/> when unknown or another tenant's.</exception>
    public Sandbox Get(CallerIdentity caller, string id) => Find(caller, id).ToView();

    /// <summary>The caller's sandboxes, oldest first; live ones unless <paramref name="includeEnded"/>.</summary>
    /// <param name="metadata">Only sandboxes whose metadata holds every one of these pairs.</param>
    public IReadOnlyList<Sandbox> List(CallerIdentity caller, bool includeEnded, IReadOnlyDictionary<string, string>? metadata)
    {
        var records = includeEnded ? _store.LoadSandboxes() : [.. _live.Values];
        return [.. records
            .Where(r => caller.CanSee(r.Owner) && r.Owner != PoolOwner)
            .Where(r => metadata is null || metadata.All(m => r.Metadata.TryGetValue(m.Key, out var v) && v == m.Value))
            .OrderBy(r => r.CreatedAt)
            .Select(r => r.ToView())];
    }

    /// <summary>The sandbox's history: every state change, by whom or by which timer.</summary>
    public async Task<IReadOnlyList<SandboxEvent>> EventsAsync(CallerIdentity caller, string id, CancellationToken cancellationToken)
    {
        var record = Find(caller, id);
        if (record.State == SandboxState.Running)
        {
            await CountKernelRefusalsAsync(record, cancellationToken);
        }

        return _store.LoadEvents(id);
    }

    public async Task<SandboxMetrics> MetricsAsync(CallerIdentity caller, string id, CancellationToken cancellationToken)
    {
        var record = RequireLive(caller, id);
        await CountKernelRefusalsAsync(record, cancellationToken);
        var usage = await _runtime.GetUsageAsync(record.Id, cancellationToken)
            ?? throw new CordonException(ErrorCode.MetricsUnavailable, "The sandbox's resource use cannot be read right now; retry in a moment.") { Subject = id, RetryAfterSeconds = 1 };
        return new SandboxMetrics(usage.MemoryBytes, usage.MemoryLimitBytes, usage.Processes, usage.CpuSeconds)
        {
            NetworkReceivedBytes = usage.NetworkReceivedBytes,
            NetworkSentBytes = usage.NetworkSentBytes,
            NetworkRefused = Interlocked.Read(ref record.NetworkRefused),
        };
    }

    /// <summary>What the host supports, whether sandboxes can be created, and the default image's state.</summary>
    public async Task<HealthReport> HealthAsync(CancellationToken cancellationToken)
    {
        var capabilities = await _runtime.ProbeAsync(cancellationToken);
        return new HealthReport
        {
            Status = capabilities.Available ? "ok" : "degraded",
            Version = CordonServer.Version,
            Runtimes =
            [
                new RuntimeHealth
                {
                    Name = capabilities.Name,
                    Available = capabilities.Available,
                    Version = capabilities.Version,
                    Cgroups = capabilities.Cgroups,
                    Seccomp = capabilities.Seccomp,
                    IdmappedMounts = capabilities.IdmappedMounts,
                    Lxcfs = capabilities.Lxcfs,
                    Network = capabilities.Network,
                    Snapshots = capabilities.Snapshots,
                    Warnings = capabilities.Warnings,
                    Problems = capabilities.Problems,
                    Fixed = capabilities.Fixed,
                },
            ],
            DefaultImage = _images.Find(_options.DefaultImage)?.Status ?? "missing",
            Sandboxes = _live.Values.Count(r => r.Owner != PoolOwner),
        };
    }

    // ---- helpers --------------------------------------------------------------------------------

    private SandboxRecord Find(CallerIdentity caller, string id)
    {
        var record = _live.TryGetValue(id, out var live) ? live : (IsValidId(id) ? _store.LoadSandbox(id) : null);
        if (record is null || !caller.CanSee(record.Owner) || (record.Owner == PoolOwner && caller != CallerIdentity.System && caller.KeyId != PoolOwner))
        {
            throw new CordonException(ErrorCode.SandboxNotFound, $"No sandbox '{Shorten(id)}' exists for this API key.") { Subject = id };
        }

        return record;
    }

    private SandboxRecord RequireLive(CallerIdentity caller, string id)
    {
        // A call that reaches into the sandbox is activity: its idle timer starts again. (Reading its description
        // is not: a dashboard polling it would keep it awake for ever.)
        var record = Find(caller, id);
        record.LastActivity = Environment.TickCount64;
        return record.State switch
        {
            SandboxState.Running => record,
            SandboxState.Paused or SandboxState.Stopped when record.Timers.AutoResume => record, // woken by its first connection
            _ => throw NotRunning(record),
        };
    }

    private AgentClient Agent(CallerIdentity caller, string id) => AgentOf(RequireLive(caller, id));

    /// <summary>The sandbox's agent; a sandbox that asked for autoResume is woken before each connection.</summary>
    private AgentClient AgentOf(SandboxRecord record)
        => new(async ct =>
        {
            await WakeForRequestAsync(record, ct);
            return await _runtime.ConnectAgentAsync(record.Id, ct);
        }, () => record.AgentAnswered = true);

    private static CordonException NotLive(SandboxRecord record) => record.State == SandboxState.Creating
        ? new CordonException(ErrorCode.SandboxCreating, $"The sandbox '{record.Id}' is still being created; retry in a moment.") { Subject = record.Id, RetryAfterSeconds = 1 }
        : new CordonException(ErrorCode.SandboxEnded, $"The sandbox '{record.Id}' has ended ({record.EndReason?.ToString().ToLowerInvariant()}); create a new one.") { Subject = record.Id };

    /// <summary>An id as a message may quote it: a caller's garbage is cut short.</summary>
    private static string Shorten(string id) => id.Length <= 64 ? id : id[..64] + "…";

    private static async Task RuntimeCallAsync(Func<ValueTask> call)
    {
        try
        {
            await call();
        }
        catch (SandboxRuntimeException ex)
        {
            throw new CordonException(ErrorCode.RuntimeFailed, ex.Message, ex) { RetryAfterSeconds = 5 };
        }
    }
}
