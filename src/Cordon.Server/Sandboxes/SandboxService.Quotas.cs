using System.Globalization;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.State;

namespace Cordon.Server.Sandboxes;

/// <summary>What a key may hold at once (its quotas) and what the host can still promise (its disk).</summary>
public sealed partial class SandboxService
{
    /// <summary>A key's quotas and what it holds of each now; quotas are null for an admin key.</summary>
    public QuotaUsage Usage(CallerIdentity caller)
    {
        var mine = _live.Values.Where(r => r.Owner == caller.KeyId).ToList();

        // Paused and stopped sandboxes hold no CPU or memory quota (waking one takes it again); they keep their disk.
        var active = mine.Where(r => r.State is SandboxState.Creating or SandboxState.Running).ToList();
        return new QuotaUsage
        {
            Quotas = _keys.QuotasOf(caller.KeyId),
            Sandboxes = mine.Count,
            Cpus = active.Sum(r => r.Cpu),
            MemoryMiB = active.Sum(r => r.MemoryMiB),
            DiskMiB = mine.Sum(r => r.DiskMiB),
            BackgroundCommands = _commandSlots.UsedBy(caller.KeyId),
        };
    }

    /// <summary>Refuses a sandbox that would take its key past a quota, the server past its most sandboxes, or
    /// the host's disk into its reserve. Called under the admission lock, before the record joins the live ones.</summary>
    private void Admit(CallerIdentity caller, SandboxRecord record)
    {
        if (_live.Count >= _options.MaxSandboxes)
        {
            throw new CordonException(ErrorCode.QuotaExceeded, $"This server already runs its maximum of {_options.MaxSandboxes} sandboxes: destroy unused ones and retry.") { RetryAfterSeconds = 5 };
        }

        if (caller.KeyId != PoolOwner && _keys.QuotasOf(caller.KeyId) is { } quotas)
        {
            var held = Usage(caller);
            Within(held.Sandboxes + 1, quotas.Sandboxes!.Value, "sandboxes", held.Sandboxes.ToString(CultureInfo.InvariantCulture));
            Within(held.Cpus + record.Cpu, quotas.Cpus!.Value, "CPU cores", held.Cpus.ToString("0.##", CultureInfo.InvariantCulture));
            Within(held.MemoryMiB + record.MemoryMiB, quotas.MemoryMiB!.Value, "MiB of memory", held.MemoryMiB.ToString(CultureInfo.InvariantCulture));
            Within(held.DiskMiB + record.DiskMiB, quotas.DiskMiB!.Value, "MiB of disk", held.DiskMiB.ToString(CultureInfo.InvariantCulture));
        }

        // Writable layers are sparse: what was promised but not yet written must still fit, with the reserve left
        // for the database, the images and the host.
        var disk = _runtime.GetDiskSpace();
        var promised = _live.Values.Sum(r => r.DiskMiB) << 20;
        var outstanding = Math.Max(0, promised - disk.LayersUsedBytes);
        var left = disk.AvailableBytes - outstanding - (_options.DiskReserveMiB << 20);
        if (record.DiskMiB << 20 > left)
        {
            throw new CordonException(
                ErrorCode.HostDiskFull,
                $"The host can promise {Math.Max(0, left >> 20)} MiB of disk to a new sandbox, less than the {record.DiskMiB} MiB asked for.")
            { RetryAfterSeconds = 30 };
        }
    }

    /// <summary>Refuses to wake a paused or stopped sandbox that would take its key past its CPU or memory quota.</summary>
    private void AdmitWake(SandboxRecord record)
    {
        if (_keys.QuotasOf(record.Owner) is { } quotas)
        {
            var held = Usage(new CallerIdentity(record.Owner, false));
            Within(held.Cpus + record.Cpu, quotas.Cpus!.Value, "CPU cores", held.Cpus.ToString("0.##", CultureInfo.InvariantCulture));
            Within(held.MemoryMiB + record.MemoryMiB, quotas.MemoryMiB!.Value, "MiB of memory", held.MemoryMiB.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static void Within(double wanted, double quota, string what, string held)
    {
        if (wanted > quota + 1e-9)
        {
            throw new CordonException(
                ErrorCode.QuotaExceeded,
                $"Your key may hold {quota.ToString(CultureInfo.InvariantCulture)} {what} at once and holds {held}: this sandbox would take it past that. Destroy sandboxes you no longer need, ask for fewer resources, or ask the operator for a larger quota.");
        }
    }
}

/// <summary>A key's quotas (null for an admin key) and what it holds now.</summary>
public sealed record QuotaUsage
{
    public KeyQuotas? Quotas { get; init; }

    public int Sandboxes { get; init; }

    public double Cpus { get; init; }

    public long MemoryMiB { get; init; }

    public long DiskMiB { get; init; }

    public int BackgroundCommands { get; init; }
}
