using System.Globalization;
using System.Text.Json.Nodes;
using Cordon.Protocol;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Http;

namespace Cordon.Server.Compat.E2b;

/// <summary>envd's <c>filesystem.Filesystem</c> service: stat, make a directory, move, list, remove, and watching
/// (a stream, or envd's polling watchers).</summary>
public sealed partial class Envd
{
    private async Task<JsonObject> FilesystemCallAsync(string path, HttpContext context, Sandbox sandbox, CallerIdentity caller, JsonObject request)
    {
        var cancellationToken = context.RequestAborted;
        var user = User(context, sandbox);
        switch (path)
        {
            case "/filesystem.Filesystem/Stat":
                return new JsonObject { ["entry"] = EntryInfo(await sandboxes.StatFileAsync(caller, sandbox.Id, Resolve(sandbox, context, Str(request, "path")), user, cancellationToken)) };
            case "/filesystem.Filesystem/MakeDir":
                return await MakeDirAsync(context, sandbox, caller, request);
            case "/filesystem.Filesystem/Move":
                var moved = await sandboxes.RenameFileAsync(caller, sandbox.Id, Resolve(sandbox, context, Str(request, "source")), Resolve(sandbox, context, Str(request, "destination")), user, cancellationToken);
                return new JsonObject { ["entry"] = EntryInfo(moved) };
            case "/filesystem.Filesystem/ListDir":
                var depth = request["depth"] is { } d && int.TryParse(d.ToString(), out var n) && n > 0 ? n : 1;
                var entries = await sandboxes.ListFilesAsync(caller, sandbox.Id, Resolve(sandbox, context, Str(request, "path")), Math.Min(depth, 32), user, cancellationToken);
                return new JsonObject { ["entries"] = new JsonArray([.. entries.Select(e => (JsonNode?)EntryInfo(e))]) };
            case "/filesystem.Filesystem/Remove":
                await sandboxes.RemoveFileAsync(caller, sandbox.Id, Resolve(sandbox, context, Str(request, "path")), user, cancellationToken);
                return [];
            case "/filesystem.Filesystem/CreateWatcher":
                var watcher = await watchers.CreateAsync(caller, sandbox.Id, Resolve(sandbox, context, Str(request, "path")), request["recursive"]?.GetValue<bool>() == true, user, cancellationToken);
                return new JsonObject { ["watcherId"] = watcher };
            case "/filesystem.Filesystem/GetWatcherEvents":
                return new JsonObject { ["events"] = watchers.Take(caller, sandbox.Id, Str(request, "watcherId")) };
            case "/filesystem.Filesystem/RemoveWatcher":
                await watchers.RemoveAsync(caller, sandbox.Id, Str(request, "watcherId"));
                return [];
            default:
                throw new ConnectException("unimplemented", $"{path} is not implemented by Cordon.");
        }
    }

    /// <summary>envd's MakeDir fails on an existing directory; Cordon's is idempotent, so ask first.</summary>
    private async Task<JsonObject> MakeDirAsync(HttpContext context, Sandbox sandbox, CallerIdentity caller, JsonObject request)
    {
        var path = Resolve(sandbox, context, Str(request, "path"));
        var user = User(context, sandbox);
        try
        {
            await sandboxes.StatFileAsync(caller, sandbox.Id, path, user, context.RequestAborted);
            throw new ConnectException("already_exists", $"directory '{path}' already exists");
        }
        catch (CordonException ex) when (ex.Code == ErrorCode.FileNotFound)
        {
        }

        return new JsonObject { ["entry"] = EntryInfo(await sandboxes.MakeDirAsync(caller, sandbox.Id, path, user, context.RequestAborted)) };
    }

    /// <summary>A directory's changes as envd's WatchDir stream: a start, then one event per change (names relative
    /// to the directory), keepalives when quiet, until the client stops (the SDK aborts the stream).</summary>
    private async Task WatchDirAsync(HttpContext context, Sandbox sandbox, CallerIdentity caller, JsonObject request)
    {
        if (request["includeEntry"]?.GetValue<bool>() == true)
        {
            throw new ConnectException("unimplemented", "includeEntry is not supported by Cordon yet.");
        }

        var path = Resolve(sandbox, context, Str(request, "path"));
        await using var watch = await sandboxes.WatchDirectoryAsync(caller, sandbox.Id, path, request["recursive"]?.GetValue<bool>() == true, User(context, sandbox), context.RequestAborted);
        var cancellationToken = context.RequestAborted;
        ConnectRpc.BeginStream(context);
        try
        {
            await ConnectRpc.WriteMessageAsync(context, new JsonObject { ["start"] = new JsonObject() }, cancellationToken);
            var keepalive = ConnectRpc.KeepaliveInterval(context);
            await using var events = watch.ReadEventsAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
            var next = events.MoveNextAsync().AsTask();
            while (true)
            {
                if (await Task.WhenAny(next, Task.Delay(keepalive, cancellationToken)) != next)
                {
                    await ConnectRpc.WriteMessageAsync(context, new JsonObject { ["keepalive"] = new JsonObject() }, cancellationToken);
                    continue;
                }

                if (!await next)
                {
                    break;
                }

                await ConnectRpc.WriteMessageAsync(context, new JsonObject { ["filesystem"] = FilesystemEvent(events.Current) }, cancellationToken);
                next = events.MoveNextAsync().AsTask();
            }

            await ConnectRpc.EndStreamAsync(context, null);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client stopped watching.
        }
        catch (CordonException ex)
        {
            await ConnectRpc.EndStreamAsync(context, E2bErrors.ToConnect(ex));
        }
    }

    /// <summary>A change as envd's FilesystemEvent.</summary>
    internal static JsonObject FilesystemEvent(WatchEvent e) => new()
    {
        ["name"] = e.Name,
        ["type"] = e.Type switch { "create" => "EVENT_TYPE_CREATE", "write" => "EVENT_TYPE_WRITE", "remove" => "EVENT_TYPE_REMOVE", "rename" => "EVENT_TYPE_RENAME", _ => "EVENT_TYPE_CHMOD" },
    };

    private static JsonObject EntryInfo(FileEntry entry)
    {
        var info = new JsonObject
        {
            ["name"] = entry.Name,
            ["type"] = entry.Type switch { "dir" => "FILE_TYPE_DIRECTORY", "symlink" => "FILE_TYPE_SYMLINK", "file" => "FILE_TYPE_FILE", _ => "FILE_TYPE_UNSPECIFIED" },
            ["path"] = entry.Path,
            ["size"] = entry.Size.ToString(CultureInfo.InvariantCulture),
            ["mode"] = entry.Mode & 0x1FF,
            ["permissions"] = Permissions(entry),
            ["owner"] = Name(entry.Uid),
            ["group"] = Name(entry.Gid),
            ["modifiedTime"] = entry.ModifiedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture),
        };
        if (entry.SymlinkTarget is { } target)
        {
            info["symlinkTarget"] = target;
        }

        return info;
    }

    /// <summary>The default image's ids by name (envd reports names); others as numbers.</summary>
    private static string Name(int id) => id switch { 0 => "root", 1000 => "user", _ => id.ToString(CultureInfo.InvariantCulture) };

    /// <summary>Go's FileMode.String(): the type letter, then rwx for user, group and others.</summary>
    private static string Permissions(FileEntry entry)
    {
        var chars = new char[10];
        chars[0] = entry.Type switch { "dir" => 'd', "symlink" => 'L', _ => '-' };
        const string rwx = "rwxrwxrwx";
        for (var i = 0; i < 9; i++)
        {
            chars[i + 1] = (entry.Mode & (1 << (8 - i))) != 0 ? rwx[i] : '-';
        }

        return new string(chars);
    }
}
