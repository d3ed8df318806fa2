using System.ComponentModel.DataAnnotations;

namespace Cordon.Server.Auth;

/// <summary>What one API key may hold at once, and how fast it may call. As an override stored with a key, a null
/// field means the server's default (<see cref="CordonOptions.Quotas"/>); as a key's effective quotas every field is
/// set. Admin keys have none (the host-wide limits still apply to them).</summary>
public sealed record KeyQuotas
{
    /// <summary>Sandboxes that exist at once (creating, running or paused).</summary>
    [Range(0, 4096)]
    public int? Sandboxes { get; init; }

    /// <summary>CPU cores of all its sandboxes together.</summary>
    [Range(0, 4096)]
    public double? Cpus { get; init; }

    /// <summary>Memory of all its sandboxes together, in MiB.</summary>
    [Range(0, 1L << 30)]
    public long? MemoryMiB { get; init; }

    /// <summary>Disk promised to all its sandboxes together, in MiB.</summary>
    [Range(0, 1L << 32)]
    public long? DiskMiB { get; init; }

    /// <summary>Background commands (MCP run_command with background, E2B processes) running at once.</summary>
    [Range(0, 65536)]
    public int? BackgroundCommands { get; init; }

    /// <summary>Requests per second, on average; bursts of up to ten seconds' worth pass.</summary>
    [Range(1, 100_000)]
    public int? RequestsPerSecond { get; init; }

    /// <summary>This override over <paramref name="defaults"/>.</summary>
    public KeyQuotas Over(KeyQuotas defaults) => new()
    {
        Sandboxes = Sandboxes ?? defaults.Sandboxes,
        Cpus = Cpus ?? defaults.Cpus,
        MemoryMiB = MemoryMiB ?? defaults.MemoryMiB,
        DiskMiB = DiskMiB ?? defaults.DiskMiB,
        BackgroundCommands = BackgroundCommands ?? defaults.BackgroundCommands,
        RequestsPerSecond = RequestsPerSecond ?? defaults.RequestsPerSecond,
    };

    /// <summary>The defaults a tenant key gets when the operator set none: room for a team's agents on one host.</summary>
    public static KeyQuotas Defaults { get; } = new()
    {
        Sandboxes = 32,
        Cpus = 16,
        MemoryMiB = 32768,
        DiskMiB = 131072,
        BackgroundCommands = 128,
        RequestsPerSecond = 100,
    };
}
