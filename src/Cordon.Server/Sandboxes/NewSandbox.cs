namespace Cordon.Server.Sandboxes;

/// <summary>What a create asks for; every interface maps its own request onto this. Null means the server's
/// default.</summary>
public sealed record NewSandbox
{
    public string? Image { get; init; }

    public double? Cpu { get; init; }

    public long? MemoryMiB { get; init; }

    public long? DiskMiB { get; init; }

    public int? MaxProcesses { get; init; }

    public int? TimeoutSeconds { get; init; }

    /// <summary>Environment every process in the sandbox starts with, over the image's.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
}
