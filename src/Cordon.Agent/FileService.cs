using Cordon.Agent.Interop;
using Cordon.Protocol;

namespace Cordon.Agent;

/// <summary>Serves the file requests. It runs inside the sandbox's mount namespace and root, so every path,
/// symlinks included, resolves within the sandbox: there is no host path to escape to. Within the sandbox, each
/// request is done with the rights of the user it is for (<see cref="UserThread"/>): the user it names, else the
/// sandbox's default user.</summary>
internal sealed class FileService(SandboxEnvironment environment)
{
    public async Task ReadAsync(ReadFileRequest request, FrameStream frames, CancellationToken cancellationToken)
    {
        var path = SandboxPaths.Normalize(request.Path);
        var (stream, entry) = await UserThread.RunAsync(UserOf(request.User), () =>
        {
            try
            {
                if (Directory.Exists(path))
                {
                    throw new AgentException(AgentErrorCodes.IsADirectory, $"'{path}' is a directory: list it instead, or read a file inside it.");
                }

                var opened = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0, FileOptions.SequentialScan);
                return (opened, DescribeOpened(path, opened));
            }
            catch (Exception ex) when (ex is not AgentException)
            {
                throw Translate(ex, path);
            }
        });

        await using (stream)
        {
            await frames.WriteJsonAsync(FrameKind.Response, entry, AgentJsonContext.Default.FileEntry, cancellationToken);
            var buffer = new byte[FrameStream.ChunkSize];
            int n;
            while ((n = await stream.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await frames.WriteAsync(FrameKind.Data, buffer.AsMemory(0, n), cancellationToken);
            }

            await frames.WriteAsync(FrameKind.DataEnd, ReadOnlyMemory<byte>.Empty, cancellationToken);
        }
    }

    public async Task WriteAsync(WriteFileRequest request, FrameStream frames, CancellationToken cancellationToken)
    {
        var user = UserOf(request.User);
        var requested = SandboxPaths.Normalize(request.Path);

        // Prepared as the user: where the file goes (through its links, as shell redirection goes), its parents, and
        // a temporary file beside it. New files and directories are the user's because the user creates them.
        var (path, temp, mode, stream) = await UserThread.RunAsync(user, () =>
        {
            var path = FollowSymlinks(requested);
            if (path == "/")
            {
                throw new AgentException(AgentErrorCodes.IsADirectory, "Cannot write to '/': give a file path.");
            }

            try
            {
                if (Directory.Exists(path))
                {
                    throw new AgentException(AgentErrorCodes.IsADirectory, $"'{path}' is a directory: choose a file path.");
                }

                var directory = Path.GetDirectoryName(path)!;
                if (request.CreateParents && !Directory.Exists(directory))
                {
                    Directory.CreateDirectory(directory);
                }

                var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.cordon-{Environment.TickCount64:x}-{Random.Shared.Next():x}");
                int? existingMode = File.Exists(path) ? (int)File.GetUnixFileMode(path) : null;
                var mode = (UnixFileMode)(existingMode ?? request.Mode ?? 0b110_100_100);
                var stream = new FileStream(temp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 0, UnixCreateMode = mode });
                return (path, temp, mode, stream);
            }
            catch (Exception ex) when (ex is not AgentException)
            {
                throw Translate(ex, path);
            }
        });

        var completed = false;
        try
        {
            await using (stream)
            {
                while (true)
                {
                    var frame = await frames.ReadAsync(cancellationToken)
                        ?? throw new AgentException(AgentErrorCodes.InvalidArgument, "The upload ended before its end marker; the file was left unchanged.");
                    if (frame.Kind == FrameKind.DataEnd)
                    {
                        break;
                    }

                    if (frame.Kind != FrameKind.Data)
                    {
                        throw new AgentException(AgentErrorCodes.InvalidArgument, $"Unexpected {frame.Kind} frame during an upload.");
                    }

                    await stream.WriteAsync(frame.Payload, cancellationToken);
                }
            }

            // Replacing the old file needs the user's right to write its directory, too.
            await UserThread.RunAsync(user, () =>
            {
                File.SetUnixFileMode(temp, mode);
                File.Move(temp, path, overwrite: true);
            });
            completed = true;
        }
        catch (Exception ex) when (ex is not AgentException)
        {
            throw Translate(ex, path);
        }
        finally
        {
            if (!completed)
            {
                await UserThread.RunAsync(user, () => TryDelete(temp));
            }
        }

        await frames.WriteJsonAsync(FrameKind.Response, await UserThread.RunAsync(user, () => Describe(path)), AgentJsonContext.Default.FileEntry, cancellationToken);
    }

    /// <summary>The user a request acts as: the one it names, else the sandbox's default user.</summary>
    public UserIdentity UserOf(string? spec)
        => (spec is null ? environment.DefaultUser : UserIdentity.Resolve(spec))
           ?? throw new AgentException(AgentErrorCodes.InvalidArgument, $"The user '{spec ?? environment.DefaultUserSpec}' does not exist in the sandbox's /etc/passwd: give an existing user name or a numeric uid.");

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    public Task<ListResponse> ListAsync(ListRequest request) => UserThread.RunAsync(UserOf(request.User), () => List(request));

    private static ListResponse List(ListRequest request)
    {
        var path = SandboxPaths.Normalize(request.Path);
        try
        {
            if (!Directory.Exists(path))
            {
                throw File.Exists(path)
                    ? new AgentException(AgentErrorCodes.NotADirectory, $"'{path}' is a file, not a directory: read it instead.")
                    : new AgentException(AgentErrorCodes.NotFound, $"The directory '{path}' does not exist in the sandbox.");
            }

            var depth = Math.Clamp(request.Depth, 1, 32);
            var entries = new List<FileEntry>();
            Walk(path, depth, entries);
            entries.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
            return new ListResponse(entries);
        }
        catch (Exception ex) when (ex is not AgentException)
        {
            throw Translate(ex, path);
        }
    }

    public Task<FileEntry> StatAsync(StatRequest request) => UserThread.RunAsync(UserOf(request.User), () => Stat(request));

    private static FileEntry Stat(StatRequest request)
    {
        var path = SandboxPaths.Normalize(request.Path);
        try
        {
            return Describe(path);
        }
        catch (Exception ex) when (ex is not AgentException)
        {
            throw Translate(ex, path);
        }
    }

    public Task<FileEntry> MakeDirAsync(MakeDirRequest request) => UserThread.RunAsync(UserOf(request.User), () => MakeDir(request));

    /// <summary>New directories belong to the user that makes them.</summary>
    private static FileEntry MakeDir(MakeDirRequest request)
    {
        var path = SandboxPaths.Normalize(request.Path);
        try
        {
            if (File.Exists(path))
            {
                throw new AgentException(AgentErrorCodes.AlreadyExists, $"'{path}' exists and is a file.");
            }

            Directory.CreateDirectory(path);
            return Describe(path);
        }
        catch (Exception ex) when (ex is not AgentException)
        {
            throw Translate(ex, path);
        }
    }

    public Task RemoveAsync(RemoveRequest request) => UserThread.RunAsync(UserOf(request.User), () => Remove(request));

    private static void Remove(RemoveRequest request)
    {
        var path = SandboxPaths.Normalize(request.Path);
        if (path == "/")
        {
            throw new AgentException(AgentErrorCodes.InvalidArgument, "Refusing to remove '/'.");
        }

        try
        {
            var info = new FileInfo(path);
            if (info.LinkTarget is not null || !Directory.Exists(path))
            {
                if (!info.Exists && info.LinkTarget is null)
                {
                    throw new AgentException(AgentErrorCodes.NotFound, $"'{path}' does not exist in the sandbox.");
                }

                File.Delete(path);
            }
            else
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (Exception ex) when (ex is not AgentException)
        {
            throw Translate(ex, path);
        }
    }

    public Task<FileEntry> RenameAsync(RenameRequest request) => UserThread.RunAsync(UserOf(request.User), () => Rename(request));

    private static FileEntry Rename(RenameRequest request)
    {
        var from = SandboxPaths.Normalize(request.From);
        var to = SandboxPaths.Normalize(request.To);
        try
        {
            if (Directory.Exists(from) && new FileInfo(from).LinkTarget is null)
            {
                Directory.Move(from, to);
            }
            else if (File.Exists(from) || new FileInfo(from).LinkTarget is not null)
            {
                File.Move(from, to, overwrite: false);
            }
            else
            {
                throw new AgentException(AgentErrorCodes.NotFound, $"'{from}' does not exist in the sandbox.");
            }

            return Describe(to);
        }
        catch (Exception ex) when (ex is not AgentException)
        {
            throw Translate(ex, to);
        }
    }

    /// <summary>Writing to a symlink writes to what it points at, as shell redirection does. Every link resolves
    /// inside the sandbox's own root, so this is convenience, not a boundary.</summary>
    private static string FollowSymlinks(string path)
    {
        for (var hops = 0; hops < 40; hops++)
        {
            var target = new FileInfo(path).LinkTarget;
            if (target is null)
            {
                return path;
            }

            path = Path.GetFullPath(target.StartsWith('/') ? target : Path.Combine(Path.GetDirectoryName(path) ?? "/", target));
        }

        throw new AgentException(AgentErrorCodes.InvalidArgument, $"Too many levels of symbolic links at '{path}'.");
    }

    /// <summary>The most entries one listing holds (about 20 MiB of JSON): a listing past it is refused, and says so.</summary>
    public const int MaxEntries = 100_000;

    private static void Walk(string directory, int depth, List<FileEntry> entries)
    {
        foreach (var child in Directory.EnumerateFileSystemEntries(directory))
        {
            if (entries.Count >= MaxEntries)
            {
                throw new AgentException(AgentErrorCodes.InvalidArgument, $"The listing holds more than {MaxEntries} entries: list a smaller directory, or with less depth.");
            }

            FileEntry entry;
            try
            {
                entry = Describe(child);
            }
            catch (FileNotFoundException)
            {
                continue; // removed while listing
            }

            entries.Add(entry);
            if (depth > 1 && entry.Type == "dir")
            {
                try
                {
                    Walk(child, depth - 1, entries);
                }
                catch (UnauthorizedAccessException)
                {
                    // A subdirectory the user may not read is listed, not descended into (as find does).
                }
            }
        }
    }

    /// <summary>lstat: a symlink is described as itself, never as what it points to.</summary>
    internal static FileEntry Describe(string path)
    {
        if (Libc.lstat(path, out var st) != 0)
        {
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            throw errno switch
            {
                2 or 20 => new AgentException(AgentErrorCodes.NotFound, $"'{path}' does not exist in the sandbox."),
                13 => new AgentException(AgentErrorCodes.PermissionDenied, $"Permission denied for '{path}'."),
                _ => new AgentException(AgentErrorCodes.Internal, $"Cannot stat '{path}': {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)}."),
            };
        }

        var type = (st.Mode & 0xF000) switch
        {
            0x8000 => "file",
            0x4000 => "dir",
            0xA000 => "symlink",
            _ => "other",
        };
        return new FileEntry
        {
            Name = path == "/" ? "/" : Path.GetFileName(path),
            Path = path,
            Type = type,
            Size = st.Size,
            Mode = (int)(st.Mode & 0xFFF),
            Uid = (int)st.Uid,
            Gid = (int)st.Gid,
            ModifiedAt = DateTimeOffset.FromUnixTimeSeconds(st.MtimeSec).AddTicks(st.MtimeNsec / 100),
            SymlinkTarget = type == "symlink" ? new FileInfo(path).LinkTarget : null,
        };
    }

    /// <summary>An opened file as it is (fstat): what a path that was a symlink leads to, with the size of what will
    /// be read (0 for files whose size is unknown, such as those in /proc).</summary>
    private static FileEntry DescribeOpened(string path, FileStream stream)
    {
        if (Libc.fstat((int)stream.SafeFileHandle.DangerousGetHandle(), out var st) != 0)
        {
            return Describe(path);
        }

        return new FileEntry
        {
            Name = path == "/" ? "/" : Path.GetFileName(path),
            Path = path,
            Type = (st.Mode & 0xF000) == 0x8000 ? "file" : "other",
            Size = st.Size,
            Mode = (int)(st.Mode & 0xFFF),
            Uid = (int)st.Uid,
            Gid = (int)st.Gid,
            ModifiedAt = DateTimeOffset.FromUnixTimeSeconds(st.MtimeSec).AddTicks(st.MtimeNsec / 100),
        };
    }

    private static AgentException Translate(Exception ex, string path) => ex switch
    {
        FileNotFoundException or DirectoryNotFoundException => new AgentException(AgentErrorCodes.NotFound, $"'{path}' (or one of its parent directories) does not exist in the sandbox."),
        UnauthorizedAccessException => new AgentException(AgentErrorCodes.PermissionDenied, $"Permission denied for '{path}'."),
        IOException io when io.HResult == 28 || io.Message.Contains("No space", StringComparison.OrdinalIgnoreCase)
            => new AgentException(AgentErrorCodes.NoSpace, $"The sandbox's disk is full while writing '{path}': remove files or create the sandbox with a larger disk."),
        IOException io when io.Message.Contains("exists", StringComparison.OrdinalIgnoreCase)
            => new AgentException(AgentErrorCodes.AlreadyExists, $"'{path}' already exists."),
        IOException io when io.Message.Contains("Not a directory", StringComparison.OrdinalIgnoreCase)
            => new AgentException(AgentErrorCodes.NotADirectory, $"A parent of '{path}' is not a directory."),
        IOException io => new AgentException(AgentErrorCodes.Internal, $"File operation on '{path}' failed: {io.Message}"),
        _ => new AgentException(AgentErrorCodes.Internal, $"File operation on '{path}' failed: {ex.Message}"),
    };
}
