using System.Diagnostics.Metrics;

namespace Cordon.Server.Observability;

/// <summary>Cordon's own instruments (System.Diagnostics.Metrics, meter <see cref="MeterName"/>), exported in
/// Prometheus' text format at <c>/metrics</c> by OpenTelemetry's exporter (docs/metrics.md lists them).</summary>
/// <remarks>Counters and histograms are recorded where things happen; gauges (sandboxes by state, what each key
/// holds, the host's memory and disk) are read from their owners when a scrape asks, through
/// <see cref="ObserveGauges"/>, so a scrape costs one pass over the live sandboxes and nothing between scrapes.</remarks>
public sealed class CordonMetrics : IDisposable
{
    public const string MeterName = "Cordon";

    /// <summary>Create → running: most take tens of ms; a pooled claim a few; a cold image or a loaded host seconds.</summary>
    private static readonly double[] CreateBuckets = [0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>An exec round trip: a few ms for <c>echo</c>; the command's own time beyond that.</summary>
    private static readonly double[] ExecBuckets = [0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300];

    private readonly Meter _meter;
    private readonly Counter<long> _creates;
    private readonly Histogram<double> _createSeconds;
    private readonly Histogram<double> _execSeconds;
    private readonly Counter<long> _ends;
    private readonly Counter<long> _poolClaims;

    public CordonMetrics()
    {
        _meter = new Meter(MeterName, CordonServer.Version);
        _creates = _meter.CreateCounter<long>("cordon.sandbox.creates", description: "Sandbox creations, by image, outcome (created or failed) and source (image, snapshot or pool).");
        _createSeconds = _meter.CreateHistogram("cordon.sandbox.create.duration", "s", "Time from a create request's admission to a running sandbox.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = CreateBuckets });
        _execSeconds = _meter.CreateHistogram("cordon.exec.duration", "s", "Round trip of a command run to completion (request to exit code), by interface-independent kind.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ExecBuckets });
        _ends = _meter.CreateCounter<long>("cordon.sandbox.ends", description: "Sandboxes that ended, by reason (deleted, expired, exited, failed, lost).");
        _poolClaims = _meter.CreateCounter<long>("cordon.pool.claims", description: "Creates a warm pool could serve, by image and result (hit: a started sandbox was handed over; miss: the pool was empty).");
    }

    /// <summary>This server's meter: another server in the same process (tests run several) has its own, by the same
    /// name, which this one's exporter must leave out.</summary>
    public Meter Meter => _meter;

    public void Created(string image, string source, TimeSpan took)
    {
        _creates.Add(1, new("image", image), new("outcome", "created"), new("source", source));
        _createSeconds.Record(took.TotalSeconds, new KeyValuePair<string, object?>("source", source));
    }

    public void CreateFailed(string image, string source)
        => _creates.Add(1, new("image", image), new("outcome", "failed"), new("source", source));

    public void Executed(TimeSpan took) => _execSeconds.Record(took.TotalSeconds);

    public void PoolClaim(string image, bool hit) => _poolClaims.Add(1, new("image", image), new("result", hit ? "hit" : "miss"));

    public void Ended(string reason) => _ends.Add(1, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>Registers the gauges; each callback runs when a scrape reads the gauge.</summary>
    public void ObserveGauges(IGaugeSource source)
    {
        _meter.CreateObservableGauge("cordon.sandboxes", () => source.Sandboxes().Select(g =>
            new Measurement<long>(g.Count, new("state", g.State), new("image", g.Image))), description: "Sandboxes that exist now, by state and image.");
        _meter.CreateObservableGauge("cordon.tenant.sandboxes", () => source.Tenants().Select(t =>
            new Measurement<long>(t.Sandboxes, new KeyValuePair<string, object?>("key", t.KeyId))), description: "Sandboxes each API key holds (every state).");
        _meter.CreateObservableGauge("cordon.tenant.cpus", () => source.Tenants().Select(t =>
            new Measurement<double>(t.Cpus, new KeyValuePair<string, object?>("key", t.KeyId))), description: "CPU cores each key's running sandboxes were given.");
        _meter.CreateObservableGauge("cordon.tenant.memory", () => source.Tenants().Select(t =>
            new Measurement<long>(t.MemoryBytes, new KeyValuePair<string, object?>("key", t.KeyId))), "By", "Memory each key's running sandboxes were given.");
        _meter.CreateObservableGauge("cordon.tenant.disk", () => source.Tenants().Select(t =>
            new Measurement<long>(t.DiskBytes, new KeyValuePair<string, object?>("key", t.KeyId))), "By", "Disk each key's sandboxes were promised.");
        _meter.CreateObservableGauge<long>("cordon.host.memory", () =>
        {
            var host = source.Host();
            return
            [
                new Measurement<long>(host.MemoryTotalBytes, new KeyValuePair<string, object?>("kind", "total")),
                new Measurement<long>(host.MemoryAvailableBytes, new KeyValuePair<string, object?>("kind", "available")),
                new Measurement<long>(host.MemoryPromisedBytes, new KeyValuePair<string, object?>("kind", "promised")),
            ];
        }, "By", "The host's memory: total, available now (MemAvailable), and promised to running sandboxes (their limits).");
        _meter.CreateObservableGauge<long>("cordon.host.disk", () =>
        {
            var host = source.Host();
            return
            [
                new Measurement<long>(host.DiskAvailableBytes, new KeyValuePair<string, object?>("kind", "available")),
                new Measurement<long>(host.DiskPromisedBytes, new KeyValuePair<string, object?>("kind", "promised")),
                new Measurement<long>(host.DiskWrittenBytes, new KeyValuePair<string, object?>("kind", "written")),
            ];
        }, "By", "Disk for writable layers: available on the host, promised to sandboxes (their sizes), and written by them.");
        _meter.CreateObservableGauge("cordon.pool.ready", () => source.Pools().Select(p =>
            new Measurement<long>(p.Ready, new KeyValuePair<string, object?>("image", p.Image))), description: "Sandboxes started ahead and ready to be taken, by image.");
        _meter.CreateObservableGauge("cordon.pool.size", () => source.Pools().Select(p =>
            new Measurement<long>(p.Size, new KeyValuePair<string, object?>("image", p.Image))), description: "Sandboxes each warm pool keeps started, by image.");
    }

    public void Dispose() => _meter.Dispose();
}

/// <summary>Where the gauges read what exists now.</summary>
public interface IGaugeSource
{
    IEnumerable<(string State, string Image, long Count)> Sandboxes();

    IEnumerable<TenantUsage> Tenants();

    HostUsage Host();

    IEnumerable<Protocol.Api.WarmPool> Pools();
}

public sealed record TenantUsage(string KeyId, long Sandboxes, double Cpus, long MemoryBytes, long DiskBytes);

public sealed record HostUsage(long MemoryTotalBytes, long MemoryAvailableBytes, long MemoryPromisedBytes, long DiskAvailableBytes, long DiskPromisedBytes, long DiskWrittenBytes);
