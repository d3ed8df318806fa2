using System.Formats.Tar;
using Cordon.Server.Images.Builds;

namespace Cordon.Cli;

/// <summary>Packs a build context directory as a tar stream, leaving out what its <c>.dockerignore</c> names (as the
/// Docker CLI does, so what the build does not need never travels). Symlinks are packed as links, never followed.</summary>
internal static class ContextArchive
{
    /// <summary>The name a Dockerfile from outside the context gets inside it.</summary>
    public const string OutsideDockerfile = ".cordon-build.Dockerfile";

    public static async Task WriteAsync(string directory, string? outsideDockerfile, Stream output, CancellationToken cancellationToken)
    {
        var root = Path.GetFullPath(directory);
        var ignorePath = Path.Combine(root, ".dockerignore");
        var ignore = new DockerIgnore(File.Exists(ignorePath) ? await File.ReadAllTextAsync(ignorePath, cancellationToken) : "");
        await using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        await AddDirectoryAsync(writer, root, "", ignore, cancellationToken);
        if (outsideDockerfile is not null)
        {
            await writer.WriteEntryAsync(outsideDockerfile, OutsideDockerfile, cancellationToken);
        }
    }

    private static async Task AddDirectoryAsync(TarWriter writer, string root, string relative, DockerIgnore ignore, CancellationToken cancellationToken)
    {
        var directory = relative.Length == 0 ? root : Path.Combine(root, relative);
        foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            var path = relative.Length == 0 ? entry.Name : relative + "/" + entry.Name;
            var ignored = ignore.Ignores(path) && path is not ("Dockerfile" or ".dockerignore");
            var isDirectory = entry is DirectoryInfo && entry.LinkTarget is null;
            if (ignored && !(isDirectory && ignore.HasExceptions))
            {
                continue;
            }

            if (!ignored)
            {
                await writer.WriteEntryAsync(entry.FullName, path, cancellationToken); // a symlink is written as one
            }

            if (isDirectory)
            {
                await AddDirectoryAsync(writer, root, path, ignore, cancellationToken);
            }
        }
    }
}
