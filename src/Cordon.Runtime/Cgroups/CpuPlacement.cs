using System.Globalization;
using System.Text;

namespace Cordon.Runtime.Cgroups;

/// <summary>Chooses the host CPUs each sandbox may run on (its cpuset), so a sandbox limited to N CPUs also
/// sees N CPUs: <c>nproc</c>, Go, Node's <c>availableParallelism</c> and every other program that counts the
/// CPUs it may run on (sched_getaffinity) size themselves to the limit, not to the host.</summary>
/// <remarks>
/// A sandbox asking for <c>c</c> CPUs gets <c>ceil(c)</c> of them, the least loaded at the time (load = the
/// CPU shares already placed on each); its CFS quota still caps it at <c>c</c>. One asking for as many CPUs as
/// the host has (or more) is not pinned. The cost of pinning is that two busy sandboxes placed on the same CPU
/// share it while another may idle; spreading by load keeps that rare, and <c>Runtime:PinCpus=false</c>
/// turns it off (then only the files lxcfs serves tell the truth; <c>nproc</c> reports the host).
/// Thread-safe.
/// </remarks>
public sealed class CpuPlacement
{
    private readonly int[] _cpus;
    private readonly double[] _load;
    private readonly Dictionary<string, (int[] Indexes, double Share)> _placed = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <param name="cpus">The host CPU numbers sandboxes may use.</param>
    public CpuPlacement(IReadOnlyList<int> cpus)
    {
        if (cpus.Count == 0)
        {
            throw new ArgumentException("At least one CPU is needed.", nameof(cpus));
        }

        _cpus = [.. cpus.Order()];
        _load = new double[_cpus.Length];
    }

    /// <summary>The CPUs this process may run on (its <c>Cpus_allowed_list</c>): sandboxes are placed within them.</summary>
    public static CpuPlacement ForThisProcess()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal))
            {
                return new CpuPlacement(Parse(line["Cpus_allowed_list:".Length..]));
            }
        }

        return new CpuPlacement([.. Enumerable.Range(0, Environment.ProcessorCount)]);
    }

    /// <summary>How many host CPUs sandboxes are placed on.</summary>
    public int HostCpus => _cpus.Length;

    /// <summary>Places a sandbox; returns its cpuset (e.g. <c>"1"</c>, <c>"0-2"</c>), or null when it may use
    /// every CPU. Placing an id again replaces its earlier placement.</summary>
    public string? Place(string id, double cpus)
    {
        if (cpus <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(cpus), cpus, "A sandbox needs a positive CPU limit.");
        }

        var count = (int)Math.Ceiling(cpus - 1e-9);
        lock (_lock)
        {
            ReleaseLocked(id);
            if (count >= _cpus.Length)
            {
                return null;
            }

            // The least loaded CPUs; among equals the lowest numbers, which keeps the choice reproducible.
            var chosen = Enumerable.Range(0, _cpus.Length).OrderBy(i => _load[i]).ThenBy(i => i).Take(count).Order().ToArray();
            Add(id, chosen, cpus / count);
            return Format(chosen.Select(i => _cpus[i]));
        }
    }

    /// <summary>Records the placement of a sandbox that already runs (found at start), so new ones are spread
    /// around it. A cpuset naming CPUs this host does not offer counts only for the ones it does.</summary>
    public void Restore(string id, string? cpuset, double cpus)
    {
        lock (_lock)
        {
            ReleaseLocked(id);
            if (string.IsNullOrWhiteSpace(cpuset))
            {
                return;
            }

            var indexes = Parse(cpuset).Select(c => Array.IndexOf(_cpus, c)).Where(i => i >= 0).ToArray();
            if (indexes.Length > 0)
            {
                Add(id, indexes, cpus / indexes.Length);
            }
        }
    }

    /// <summary>Forgets a sandbox's placement. Unknown ids are fine.</summary>
    public void Release(string id)
    {
        lock (_lock)
        {
            ReleaseLocked(id);
        }
    }

    /// <summary>The CPU shares placed on each host CPU, by CPU number.</summary>
    public IReadOnlyDictionary<int, double> Load()
    {
        lock (_lock)
        {
            return Enumerable.Range(0, _cpus.Length).ToDictionary(i => _cpus[i], i => _load[i]);
        }
    }

    private void Add(string id, int[] indexes, double share)
    {
        foreach (var i in indexes)
        {
            _load[i] += share;
        }

        _placed[id] = (indexes, share);
    }

    private void ReleaseLocked(string id)
    {
        if (_placed.Remove(id, out var placed))
        {
            foreach (var i in placed.Indexes)
            {
                _load[i] = Math.Max(0, _load[i] - placed.Share);
            }
        }
    }

    /// <summary>Parses a kernel CPU list (<c>"0-3,8,10-11"</c>).</summary>
    public static int[] Parse(string list)
    {
        var cpus = new SortedSet<int>();
        foreach (var part in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var dash = part.IndexOf('-', StringComparison.Ordinal);
            if (dash < 0)
            {
                cpus.Add(int.Parse(part, CultureInfo.InvariantCulture));
                continue;
            }

            var first = int.Parse(part[..dash], CultureInfo.InvariantCulture);
            var last = int.Parse(part[(dash + 1)..], CultureInfo.InvariantCulture);
            for (var cpu = first; cpu <= last; cpu++)
            {
                cpus.Add(cpu);
            }
        }

        return [.. cpus];
    }

    /// <summary>Formats CPU numbers as a kernel CPU list, ranges joined (<c>0-2,5</c>).</summary>
    public static string Format(IEnumerable<int> cpus)
    {
        var sorted = cpus.Distinct().Order().ToArray();
        var text = new StringBuilder();
        for (var i = 0; i < sorted.Length; i++)
        {
            var start = sorted[i];
            while (i + 1 < sorted.Length && sorted[i + 1] == sorted[i] + 1)
            {
                i++;
            }

            text.Append(text.Length > 0 ? "," : "").Append(start.ToString(CultureInfo.InvariantCulture));
            if (sorted[i] != start)
            {
                text.Append('-').Append(sorted[i].ToString(CultureInfo.InvariantCulture));
            }
        }

        return text.ToString();
    }
}
