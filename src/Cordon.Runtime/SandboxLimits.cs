namespace Cordon.Runtime;

/// <summary>The resource limits of one sandbox, enforced by cgroups and the writable layer's size.</summary>
public sealed record SandboxLimits
{
    public double Cpus { get; init; } = 1;

    public long MemoryMiB { get; init; } = 512;

    public int MaxProcesses { get; init; } = 256;

    public long DiskMiB { get; init; } = 2048;
}
