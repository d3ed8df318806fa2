using System.Formats.Tar;

namespace Cordon.Server.Images.Builds;

/// <summary>A file, directory or link of a build context.</summary>
/// <param name="Path">Relative to the context's root, cleaned (<see cref="GlobPattern.Clean"/>).</param>
/// <param name="Mode">Permission bits (with setuid, setgid and sticky).</param>
public sealed record ContextEntry(string Path, TarEntryType Type, int Mode, long Size, string? LinkTarget)
{
    public bool IsDirectory => Type == TarEntryType.Directory;

    public bool IsFile => Type is TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile;
}
