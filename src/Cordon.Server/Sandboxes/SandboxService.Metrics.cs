using Cordon.Server.Observability;

namespace Cordon.Server.Sandboxes;

/// <summary>What the metrics' gauges read when a scrape asks: one pass over the live sandboxes each.</summary>
public sealed partial class SandboxService : IGaugeSource
{
    IEnumerable<(string State, string Image, long Count)> IGaugeSource.Sandboxes()
        => _live.Values.Where(r => r.Owner != PoolOwner).GroupBy(r => (r.State, r.Image)).Select(g => (g.Key.State.ToString().ToLowerInvariant(), g.Key.Image, (long)g.Count()));

    IEnumerable<TenantUsage> IGaugeSource.Tenants()
        => _live.Values.Where(r => r.Owner != PoolOwner).GroupBy(r => r.Owner).Select(g =>
        {
            // Paused and stopped sandboxes hold no CPU or memory (as for quotas); they keep their disk.
            var active = g.Where(r => r.State is SandboxState.Creating or SandboxState.Running).ToList();
            return new TenantUsage(g.Key, g.Count(), active.Sum(r => r.Cpu), active.Sum(r => r.MemoryMiB) << 20, g.Sum(r => r.DiskMiB) << 20);
        });

    HostUsage IGaugeSource.Host()
    {
        var (total, available) = HostMemory.Read();
        var disk = _runtime.GetDiskSpace();
        var live = _live.Values.ToList();
        return new HostUsage(
            total,
            available,
            live.Where(r => r.State is SandboxState.Creating or SandboxState.Running).Sum(r => r.MemoryMiB) << 20,
            disk.AvailableBytes,
            live.Sum(r => r.DiskMiB) << 20,
            disk.LayersUsedBytes);
    }

    IEnumerable<Protocol.Api.WarmPool> IGaugeSource.Pools() => Pools();
}
