namespace Cordon.Server.Observability;

/// <summary>The host's memory as the kernel reports it in <c>/proc/meminfo</c>.</summary>
internal static class HostMemory
{
    /// <returns>MemTotal and MemAvailable in bytes (0 where the kernel did not say).</returns>
    public static (long Total, long Available) Read()
    {
        long total = 0, available = 0;
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
            {
                total = Kibibytes(line) << 10;
            }
            else if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
            {
                available = Kibibytes(line) << 10;
                break;
            }
        }

        return (total, available);
    }

    private static long Kibibytes(string line)
        => long.TryParse(line.AsSpan(line.IndexOf(':', StringComparison.Ordinal) + 1).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture, out var value) ? value : 0;
}
