using System.Threading.Channels;
using Cordon.Protocol;

namespace Cordon.Agent;

/// <summary>Streams the changes in a directory (inotify, through the runtime's FileSystemWatcher) until the client
/// closes the connection. The user the watch is for must be able to list the directory; in a recursive watch,
/// changes inside subdirectories that user may not list are not reported.</summary>
internal static class DirectoryWatch
{
    public static async Task RunAsync(WatchRequest request, UserIdentity user, FrameStream frames, CancellationToken cancellationToken)
    {
        var root = SandboxPaths.Normalize(request.Path);
        await UserThread.RunAsync(user, () =>
        {
            if (!Directory.Exists(root))
            {
                throw new AgentException(File.Exists(root) ? AgentErrorCodes.NotADirectory : AgentErrorCodes.NotFound,
                    File.Exists(root) ? $"'{root}' is a file; watch a directory." : $"The directory '{root}' does not exist in the sandbox.");
            }

            try
            {
                Directory.EnumerateFileSystemEntries(root).Any();
            }
            catch (UnauthorizedAccessException)
            {
                throw new AgentException(AgentErrorCodes.PermissionDenied, $"Permission denied for '{root}': {user.Name} may not list it.");
            }
        });

        var events = Channel.CreateBounded<WatchEvent>(new BoundedChannelOptions(4096) { FullMode = BoundedChannelFullMode.DropOldest });
        using var watcher = new FileSystemWatcher(root)
        {
            IncludeSubdirectories = request.Recursive,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.Attributes,
            InternalBufferSize = 64 * 1024,
        };
        void Post(string path, string type)
        {
            // Uploads are written to a hidden temporary file renamed into place: the rename's "create" of the real
            // name is the event that matters.
            if (!IsUploadTemporary(path) && (user.IsRoot || CanList(Path.GetDirectoryName(path)!, user, root)))
            {
                events.Writer.TryWrite(new WatchEvent(Path.GetRelativePath(root, path), type));
            }
        }

        watcher.Created += (_, e) => Post(e.FullPath, "create");
        watcher.Changed += (_, e) => Post(e.FullPath, "write");
        watcher.Deleted += (_, e) => Post(e.FullPath, "remove");
        watcher.Renamed += (_, e) =>
        {
            Post(e.OldFullPath, "rename");
            Post(e.FullPath, "create");
        };
        watcher.EnableRaisingEvents = true;
        await frames.WriteAsync(FrameKind.Response, "{}"u8.ToArray(), cancellationToken);

        // The client ends the watch by closing the connection.
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var reader = WaitForCloseAsync(frames, closed);
        try
        {
            await foreach (var e in events.Reader.ReadAllAsync(closed.Token))
            {
                await frames.WriteJsonAsync(FrameKind.WatchEvent, e, AgentJsonContext.Default.WatchEvent, closed.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }

        await reader;
    }

    /// <summary>The names <see cref="FileService"/> gives files being written (<c>.name.cordon-…</c>).</summary>
    private static bool IsUploadTemporary(string path)
    {
        var name = Path.GetFileName(path);
        return name.StartsWith('.') && name.Contains(".cordon-", StringComparison.Ordinal);
    }

    private static async Task WaitForCloseAsync(FrameStream frames, CancellationTokenSource closed)
    {
        try
        {
            while (await frames.ReadAsync(closed.Token) is not null)
            {
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidDataException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
        }

        await closed.CancelAsync();
    }

    /// <summary>Whether <paramref name="user"/> may list a directory below the watched root, by its mode bits (the
    /// watch itself runs as the agent; the root was checked as the user when the watch began).</summary>
    private static bool CanList(string directory, UserIdentity user, string root)
    {
        if (directory == root)
        {
            return true;
        }

        if (Interop.Libc.lstat(directory, out var st) != 0)
        {
            return false;
        }

        var bits = st.Uid == user.Uid ? (st.Mode >> 6) & 5 : user.Groups.Contains(st.Gid) || st.Gid == user.Gid ? (st.Mode >> 3) & 5 : st.Mode & 5;
        return bits == 5 && CanList(Path.GetDirectoryName(directory)!, user, root);
    }
}
