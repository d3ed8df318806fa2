namespace Cordon.Runtime;

/// <summary>Disk on the file system that holds the sandboxes' writable layers.</summary>
/// <param name="AvailableBytes">Free for use now.</param>
/// <param name="LayersUsedBytes">Taken now by what sandboxes wrote to their (sparse) writable layers.</param>
public sealed record DiskSpace(long AvailableBytes, long LayersUsedBytes);
