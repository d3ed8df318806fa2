using Cordon.Protocol.Api;
using Cordon.Server.State;

namespace Cordon.Server.Api;

/// <summary>Turns service records into API shapes.</summary>
internal static class SandboxMapping
{
    public static SandboxInfo ToInfo(this SandboxRecord record) => new()
    {
        Id = record.Id,
        State = record.State,
        Image = record.Image,
        Cpu = record.Cpu,
        MemoryMiB = record.MemoryMiB,
        DiskMiB = record.DiskMiB,
        MaxProcesses = record.MaxProcesses,
        Runtime = record.Runtime,
        CreatedAt = record.CreatedAt,
        ExpiresAt = record.ExpiresAt,
        EndedAt = record.EndedAt,
        EndReason = record.EndReason,
        Metadata = record.Metadata,
    };
}
