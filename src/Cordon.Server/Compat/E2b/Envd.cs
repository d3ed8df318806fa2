using System.IO.Compression;
using System.Text.Json.Nodes;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Runtime.Agent;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Cordon.Server.State;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Cordon.Server.Compat.E2b;

/// <summary>envd, E2B's in-sandbox daemon, as the SDKs call it: <c>process.Process</c> and <c>filesystem.Filesystem</c>
/// over Connect RPC, <c>/files</c> for uploads and downloads, <c>/health</c>. Processes are Cordon commands kept by
/// <see cref="BackgroundCommands"/>, so they outlive the request that started them (the SDK's
/// <c>disconnect()</c> and <c>commands.connect(pid)</c>), bounded by the call's <c>Connect-Timeout-Ms</c>.</summary>
public sealed class Envd(SandboxService sandboxes, BackgroundCommands commands, EnvdWatchers watchers, Microsoft.Extensions.Options.IOptions<CordonOptions> options)
{
    public async Task HandleAsync(HttpContext context, SandboxRecord sandbox, CallerIdentity caller)
    {
        var path = context.Request.Path.Value ?? "";
        var method = context.Request.Method;
        if (path == "/health")
        {
            context.Response.StatusCode = 204;
            return;
        }

        if (path == "/files" && (HttpMethods.IsGet(method) || HttpMethods.IsPost(method)))
        {
            await FilesAsync(context, sandbox, caller);
            return;
        }

        if (!HttpMethods.IsPost(method) || !path.StartsWith("/process.Process/", StringComparison.Ordinal) && !path.StartsWith("/filesystem.Filesystem/", StringComparison.Ordinal))
        {
            await E2bControlPlane.Error(404, $"envd has no {method} {path}.").ExecuteAsync(context);
            return;
        }

        var stream = ConnectRpc.IsStream(context);
        try
        {
            if (path == "/process.Process/StreamInput")
            {
                await StreamInputAsync(context, sandbox, caller);
                return;
            }

            var request = await ConnectRpc.ReadRequestAsync(context);
            switch (path)
            {
                case "/process.Process/Start":
                    await StartAsync(context, sandbox, caller, request);
                    return;
                case "/process.Process/Connect":
                    await ConnectAsync(context, sandbox, caller, request);
                    return;
                case "/filesystem.Filesystem/WatchDir":
                    await WatchDirAsync(context, sandbox, caller, request);
                    return;
            }

            var response = path switch
            {
                "/process.Process/List" => List(sandbox, caller),
                "/process.Process/SendInput" => await SendInputAsync(sandbox, caller, request, context.RequestAborted),
                "/process.Process/SendSignal" => await SendSignalAsync(sandbox, caller, request, context.RequestAborted),
                "/process.Process/CloseStdin" => await CloseStdinAsync(sandbox, caller, request, context.RequestAborted),
                "/process.Process/Update" => await UpdateAsync(sandbox, caller, request, context.RequestAborted),
                "/filesystem.Filesystem/Stat" => new JsonObject { ["entry"] = EntryInfo(await sandboxes.StatFileAsync(caller, sandbox.Id, Resolve(sandbox, context, Str(request, "path")), context.RequestAborted)) },
                "/filesystem.Filesystem/MakeDir" => await MakeDirAsync(context, sandbox, caller, request),
                "/filesystem.Filesystem/Move" => new JsonObject { ["entry"] = EntryInfo(await sandboxes.RenameFileAsync(caller, sandbox.Id, Resolve(sandbox, context, Str(request, "source")), Resolve(sandbox, context, Str(request, "destination")), context.RequestAborted)) },
                "/filesystem.Filesystem/ListDir" => await ListDirAsync(context, sandbox, caller, request),
                "/filesystem.Filesystem/Remove" => await RemoveAsync(context, sandbox, caller, request),
                "/filesystem.Filesystem/CreateWatcher" => new JsonObject
                {
                    ["watcherId"] = await watchers.CreateAsync(caller, sandbox.Id, Resolve(sandbox, context, Str(request, "path")), request["recursive"]?.GetValue<bool>() == true, context.RequestAborted),
                },
                "/filesystem.Filesystem/GetWatcherEvents" => new JsonObject { ["events"] = watchers.Take(caller, sandbox.Id, Str(request, "watcherId")) },
                "/filesystem.Filesystem/RemoveWatcher" => await RemoveWatcherAsync(sandbox, caller, request),
                _ => throw new ConnectException("unimplemented", $"{path} is not implemented by Cordon (client streams are not)."),
            };
            await ConnectRpc.WriteUnaryAsync(context, response);
        }
        catch (Exception ex) when (Translate(ex) is { } error)
        {
            if (stream)
            {
                ConnectRpc.BeginStream(context);
                await ConnectRpc.EndStreamAsync(context, error);
            }
            else
            {
                await ConnectRpc.WriteUnaryErrorAsync(context, error);
            }
        }
    }

    // ---- processes ------------------------------------------------------------------------------

    private async Task StartAsync(HttpContext context, SandboxRecord sandbox, CallerIdentity caller, JsonObject request)
    {
        var process = request["process"] as JsonObject ?? throw new ConnectException("invalid_argument", "process is missing.");
        var cmd = Str(process, "cmd");
        var args = (process["args"] as JsonArray)?.Select(a => a?.GetValue<string>() ?? "").ToList() ?? [];
        var envs = (process["envs"] as JsonObject)?.ToDictionary(e => e.Key, e => e.Value?.GetValue<string>() ?? "");
        var user = User(context, sandbox);
        var cwd = process["cwd"]?.GetValue<string>() is { Length: > 0 } dir ? Resolve(sandbox, user, dir) : null;
        var timeout = ConnectRpc.Timeout(context);
        var body = ExecRequestBody.FromArgv([cmd, .. args]) with
        {
            Env = envs,
            Cwd = cwd,
            User = user,
            TimeoutSeconds = timeout is { } t ? (int)Math.Clamp(Math.Ceiling(t.TotalSeconds), 1, options.Value.MaxTimeoutSeconds) : options.Value.MaxTimeoutSeconds,
        };
        var pty = request["pty"]?["size"] is JsonObject size
            ? new TerminalSize(size["cols"]?.GetValue<int>() ?? 80, size["rows"]?.GetValue<int>() ?? 24)
            : request["pty"] is JsonObject ? new TerminalSize(80, 24) : null;
        var exec = sandboxes.BuildExecRequest(body) with { Stdin = pty is not null || request["stdin"]?.GetValue<bool>() == true, Pty = pty };

        ExecSession session;
        try
        {
            session = await sandboxes.StartExecAsync(caller, sandbox.Id, exec, context.RequestAborted);
        }
        catch (CordonException ex) when (ex.Status == 404)
        {
            throw new ConnectException("invalid_argument", $"cwd '{cwd}' does not exist");
        }

        var (handle, live) = commands.Start(caller, sandbox.Id, session, exec, subscribe: true);
        await StreamAsync(context, handle, live!);
    }

    private async Task ConnectAsync(HttpContext context, SandboxRecord sandbox, CallerIdentity caller, JsonObject request)
    {
        var handle = Find(sandbox, caller, request);
        await StreamAsync(context, handle, handle.Subscribe());
    }

    /// <summary>Streams a process: its start, its output as it comes (keepalives when quiet), its end. The client
    /// going away detaches without stopping the process.</summary>
    private static async Task StreamAsync(HttpContext context, CommandHandle handle, CommandHandle.Subscription live)
    {
        using var _ = live;
        var cancellationToken = context.RequestAborted;
        ConnectRpc.BeginStream(context);
        try
        {
            await ConnectRpc.WriteMessageAsync(context, Event("start", new JsonObject { ["pid"] = handle.Pid }), cancellationToken);
            var keepalive = ConnectRpc.KeepaliveInterval(context);
            while (true)
            {
                var ready = live.Reader.WaitToReadAsync(cancellationToken).AsTask();
                if (await Task.WhenAny(ready, Task.Delay(keepalive, cancellationToken)) != ready)
                {
                    await ConnectRpc.WriteMessageAsync(context, Event("keepalive", []), cancellationToken);
                    await ready;
                }

                if (!await ready)
                {
                    break;
                }

                while (live.Reader.TryRead(out var e))
                {
                    var stream = handle.Request.Pty is not null ? "pty" : e.Kind == ExecEventKind.Stdout ? "stdout" : "stderr";
                    await ConnectRpc.WriteMessageAsync(context, Event("data", new JsonObject { [stream] = Convert.ToBase64String(e.Data) }), cancellationToken);
                }
            }

            await handle.WaitAsync(Timeout.InfiniteTimeSpan, cancellationToken);
            if (handle.Exit is not { } exit)
            {
                await ConnectRpc.EndStreamAsync(context, new ConnectException("unavailable", handle.Failure ?? "The connection to the sandbox broke."));
                return;
            }

            await ConnectRpc.WriteMessageAsync(context, Event("end", End(exit)), cancellationToken);
            await ConnectRpc.EndStreamAsync(context, exit.TimedOut ? new ConnectException("deadline_exceeded", "The process ran past the call's timeout and was killed.") : null);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client detached (disconnect(), or it went away): the process runs on.
        }
    }

    private JsonObject List(SandboxRecord sandbox, CallerIdentity caller)
    {
        var processes = new JsonArray();
        foreach (var handle in commands.Running(caller, sandbox.Id))
        {
            var config = new JsonObject
            {
                ["cmd"] = handle.Request.Argv[0],
                ["args"] = new JsonArray([.. handle.Request.Argv.Skip(1).Select(a => (JsonNode?)JsonValue.Create(a))]),
                ["envs"] = new JsonObject([.. (handle.Request.Env ?? new Dictionary<string, string>()).Select(e => KeyValuePair.Create(e.Key, (JsonNode?)JsonValue.Create(e.Value)))]),
            };
            if (handle.Request.Cwd is { } cwd)
            {
                config["cwd"] = cwd;
            }

            processes.Add(new JsonObject { ["config"] = config, ["pid"] = handle.Pid });
        }

        return new JsonObject { ["processes"] = processes };
    }

    private async Task<JsonObject> SendInputAsync(SandboxRecord sandbox, CallerIdentity caller, JsonObject request, CancellationToken cancellationToken)
    {
        var handle = Find(sandbox, caller, request);
        var input = request["input"] as JsonObject;
        var data = (input?["stdin"] ?? input?["pty"])?.GetValue<string>() is { } b64 ? Convert.FromBase64String(b64) : [];
        await Running(handle).WriteStdinAsync(data, close: false, cancellationToken);
        return [];
    }

    private async Task<JsonObject> SendSignalAsync(SandboxRecord sandbox, CallerIdentity caller, JsonObject request, CancellationToken cancellationToken)
    {
        var handle = Find(sandbox, caller, request);
        var signal = request["signal"]?.ToString() switch
        {
            "SIGNAL_SIGKILL" or "9" => 9,
            "SIGNAL_SIGTERM" or "15" => 15,
            var other => throw new ConnectException("invalid_argument", $"signal {other} is not supported: use SIGNAL_SIGKILL or SIGNAL_SIGTERM."),
        };
        await Running(handle).SignalAsync(signal, cancellationToken);
        return [];
    }

    private async Task<JsonObject> CloseStdinAsync(SandboxRecord sandbox, CallerIdentity caller, JsonObject request, CancellationToken cancellationToken)
    {
        await Running(Find(sandbox, caller, request)).WriteStdinAsync(ReadOnlyMemory<byte>.Empty, close: true, cancellationToken);
        return [];
    }

    /// <summary>StreamInput, the one client stream: a start naming the process, then input as it comes (keepalives
    /// between), until the request body ends; answered by one empty message and the end of the stream.</summary>
    private async Task StreamInputAsync(HttpContext context, SandboxRecord sandbox, CallerIdentity caller)
    {
        CommandHandle? handle = null;
        await foreach (var message in ConnectRpc.ReadMessagesAsync(context))
        {
            if (message["start"] is JsonObject start)
            {
                handle = Running(Find(sandbox, caller, start));
            }
            else if (message["data"]?["input"] is JsonObject input)
            {
                var target = handle ?? throw new ConnectException("failed_precondition", "The stream must start with a start message naming the process.");
                var data = (input["stdin"] ?? input["pty"])?.GetValue<string>() is { } b64 ? Convert.FromBase64String(b64) : [];
                await target.WriteStdinAsync(data, close: false, context.RequestAborted);
            }
        }

        ConnectRpc.BeginStream(context);
        await ConnectRpc.WriteMessageAsync(context, new JsonObject(), context.RequestAborted);
        await ConnectRpc.EndStreamAsync(context, null);
    }

    /// <summary>Update changes a terminal's size (pty.resize).</summary>
    private async Task<JsonObject> UpdateAsync(SandboxRecord sandbox, CallerIdentity caller, JsonObject request, CancellationToken cancellationToken)
    {
        var handle = Running(Find(sandbox, caller, request));
        if (request["pty"]?["size"] is JsonObject size)
        {
            await handle.ResizeAsync(size["cols"]?.GetValue<int>() ?? 80, size["rows"]?.GetValue<int>() ?? 24, cancellationToken);
        }

        return [];
    }

    private CommandHandle Find(SandboxRecord sandbox, CallerIdentity caller, JsonObject request)
    {
        var selector = request["process"] as JsonObject;
        if (selector?["pid"] is not { } pidNode || !int.TryParse(pidNode.ToString(), out var pid))
        {
            throw new ConnectException("invalid_argument", "process.pid is missing (selecting processes by tag is not supported).");
        }

        return commands.FindByPid(caller, sandbox.Id, pid) ?? throw new ConnectException("not_found", $"process with pid {pid} not found");
    }

    private static CommandHandle Running(CommandHandle handle)
        => handle.Running ? handle : throw new ConnectException("not_found", $"process with pid {handle.Pid} not found (it has ended)");

    private static JsonObject Event(string kind, JsonObject body) => new() { ["event"] = new JsonObject { [kind] = body } };

    /// <summary>envd's EndEvent is Go's ProcessState: "exit status N", or "signal: killed" with exit code -1.</summary>
    private static JsonObject End(ExitMessage exit)
    {
        if (exit.Signal is { } signal)
        {
            var status = "signal: " + (signal switch { 9 => "killed", 15 => "terminated", 2 => "interrupt", 1 => "hangup", _ => signal.ToString() });
            return new JsonObject { ["exitCode"] = -1, ["exited"] = false, ["status"] = status, ["error"] = status };
        }

        var end = new JsonObject { ["exitCode"] = exit.ExitCode, ["exited"] = true, ["status"] = $"exit status {exit.ExitCode}" };
        if (exit.ExitCode != 0)
        {
            end["error"] = $"exit status {exit.ExitCode}";
        }

        return end;
    }

    // ---- filesystem -----------------------------------------------------------------------------

    private async Task<JsonObject> MakeDirAsync(HttpContext context, SandboxRecord sandbox, CallerIdentity caller, JsonObject request)
    {
        var path = Resolve(sandbox, context, Str(request, "path"));
        try
        {
            await sandboxes.StatFileAsync(caller, sandbox.Id, path, context.RequestAborted);
            throw new ConnectException("already_exists", $"directory '{path}' already exists");
        }
        catch (CordonException ex) when (ex.Status == 404)
        {
        }

        return new JsonObject { ["entry"] = EntryInfo(await sandboxes.MakeDirAsync(caller, sandbox.Id, path, context.RequestAborted)) };
    }

    private async Task<JsonObject> ListDirAsync(HttpContext context, SandboxRecord sandbox, CallerIdentity caller, JsonObject request)
    {
        var depth = request["depth"] is { } d && int.TryParse(d.ToString(), out var n) && n > 0 ? n : 1;
        var listing = await sandboxes.ListFilesAsync(caller, sandbox.Id, Resolve(sandbox, context, Str(request, "path")), Math.Min(depth, 32), context.RequestAborted);
        return new JsonObject { ["entries"] = new JsonArray([.. listing.Entries.Select(e => (JsonNode?)EntryInfo(e))]) };
    }

    private async Task<JsonObject> RemoveAsync(HttpContext context, SandboxRecord sandbox, CallerIdentity caller, JsonObject request)
    {
        await sandboxes.RemoveFileAsync(caller, sandbox.Id, Resolve(sandbox, context, Str(request, "path")), context.RequestAborted);
        return [];
    }

    /// <summary>A directory's changes as envd's WatchDir stream: a start, then one event per change (names relative
    /// to the directory), keepalives when quiet, until the client stops (the SDK aborts the stream).</summary>
    private async Task WatchDirAsync(HttpContext context, SandboxRecord sandbox, CallerIdentity caller, JsonObject request)
    {
        if (request["includeEntry"]?.GetValue<bool>() == true)
        {
            throw new ConnectException("unimplemented", "includeEntry is not supported by Cordon yet.");
        }

        var path = Resolve(sandbox, context, Str(request, "path"));
        await using var watch = await sandboxes.WatchDirectoryAsync(caller, sandbox.Id, path, request["recursive"]?.GetValue<bool>() == true, context.RequestAborted);
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
    }

    /// <summary>A change as envd's FilesystemEvent.</summary>
    internal static JsonObject FilesystemEvent(WatchEvent e) => new()
    {
        ["name"] = e.Name,
        ["type"] = e.Type switch { "create" => "EVENT_TYPE_CREATE", "write" => "EVENT_TYPE_WRITE", "remove" => "EVENT_TYPE_REMOVE", "rename" => "EVENT_TYPE_RENAME", _ => "EVENT_TYPE_CHMOD" },
    };

    private async Task<JsonObject> RemoveWatcherAsync(SandboxRecord sandbox, CallerIdentity caller, JsonObject request)
    {
        await watchers.RemoveAsync(caller, sandbox.Id, Str(request, "watcherId"));
        return [];
    }

    private static JsonObject EntryInfo(FileEntry entry)
    {
        var info = new JsonObject
        {
            ["name"] = entry.Name,
            ["type"] = entry.Type switch { "dir" => "FILE_TYPE_DIRECTORY", "symlink" => "FILE_TYPE_SYMLINK", "file" => "FILE_TYPE_FILE", _ => "FILE_TYPE_UNSPECIFIED" },
            ["path"] = entry.Path,
            ["size"] = entry.Size.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["mode"] = entry.Mode & 0x1FF,
            ["permissions"] = Permissions(entry),
            ["owner"] = Name(entry.Uid),
            ["group"] = Name(entry.Gid),
            ["modifiedTime"] = entry.ModifiedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture),
        };
        if (entry.SymlinkTarget is { } target)
        {
            info["symlinkTarget"] = target;
        }

        return info;
    }

    /// <summary>The default image's ids by name (envd reports names); others as numbers.</summary>
    private static string Name(int id) => id switch { 0 => "root", 1000 => "user", _ => id.ToString(System.Globalization.CultureInfo.InvariantCulture) };

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

    // ---- /files ---------------------------------------------------------------------------------

    private async Task FilesAsync(HttpContext context, SandboxRecord sandbox, CallerIdentity caller)
    {
        var user = context.Request.Query["username"].ToString() is { Length: > 0 } name ? name : DefaultUser(sandbox);
        try
        {
            if (HttpMethods.IsGet(context.Request.Method))
            {
                var path = Resolve(sandbox, user, context.Request.Query["path"].ToString());
                await using var download = await sandboxes.ReadFileAsync(caller, sandbox.Id, path, context.RequestAborted);
                context.Response.ContentType = "application/octet-stream";
                context.Response.ContentLength = download.Length;
                await download.CopyToAsync(context.Response.Body, context.RequestAborted);
                return;
            }

            Api.SandboxEndpoints.AllowLargeBody(context, options.Value.MaxUploadBytes);
            var written = new JsonArray();
            var target = context.Request.Query["path"].ToString();
            if (MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var type) && type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
            {
                var boundary = HeaderUtilities.RemoveQuotes(type.Boundary).Value ?? throw CordonException.Invalid("The multipart body has no boundary.");
                var reader = new MultipartReader(boundary, context.Request.Body);
                while (await reader.ReadNextSectionAsync(context.RequestAborted) is { } section)
                {
                    var disposition = section.GetContentDispositionHeader();
                    var filename = disposition?.FileName.Value ?? disposition?.FileNameStar.Value;
                    var path = Resolve(sandbox, user, target.Length > 0 ? target : Uri.UnescapeDataString(filename ?? ""));
                    written.Add(await WriteAsync(sandbox, caller, user, path, section.Body, context.RequestAborted));
                }
            }
            else
            {
                var body = context.Request.Headers.ContentEncoding.ToString().Contains("gzip", StringComparison.OrdinalIgnoreCase)
                    ? new GZipStream(context.Request.Body, CompressionMode.Decompress)
                    : context.Request.Body;
                written.Add(await WriteAsync(sandbox, caller, user, Resolve(sandbox, user, target), body, context.RequestAborted));
            }

            if (written.Count == 0)
            {
                throw CordonException.Invalid("The upload holds no file: send a multipart part named 'file', or the raw bytes with ?path=.");
            }

            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(written.ToJsonString(), context.RequestAborted);
        }
        catch (CordonException ex)
        {
            await E2bControlPlane.Error(ex.Status, ex.Message).ExecuteAsync(context);
        }
        catch (InvalidDataException ex)
        {
            await E2bControlPlane.Error(400, "The upload is malformed: " + ex.Message).ExecuteAsync(context);
        }
    }

    /// <summary>Writes one uploaded file; the agent creates missing parent directories itself.</summary>
    private async Task<JsonObject> WriteAsync(SandboxRecord sandbox, CallerIdentity caller, string? user, string path, Stream content, CancellationToken cancellationToken)
    {
        var entry = await sandboxes.WriteFileAsync(caller, sandbox.Id, path, content, mode: null, user: user, cancellationToken);
        return new JsonObject { ["name"] = entry.Name, ["path"] = entry.Path, ["type"] = "file" };
    }

    // ---- users and paths ------------------------------------------------------------------------

    /// <summary>E2B's templates run as <c>user</c> (home /home/user); other images as their own default user.</summary>
    internal static string? DefaultUser(SandboxRecord sandbox)
        => sandbox.Metadata.GetValueOrDefault(E2bControlPlane.TemplateMetadata) is "base" or "code-interpreter-v1" or "code-interpreter" ? "user" : null;

    private static string? User(HttpContext context, SandboxRecord sandbox) => E2bSandboxPlane.BasicUser(context) ?? DefaultUser(sandbox);

    private static string Resolve(SandboxRecord sandbox, HttpContext context, string path) => Resolve(sandbox, User(context, sandbox), path);

    /// <summary>envd resolves <c>~</c> and relative paths against the user's home.</summary>
    internal static string Resolve(SandboxRecord sandbox, string? user, string path)
    {
        var home = (user ?? "root") switch { "root" => "/root", var name => "/home/" + name };
        if (string.IsNullOrEmpty(path))
        {
            throw CordonException.Invalid("path is missing.");
        }

        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
        {
            return home + path[1..];
        }

        return path.StartsWith('/') ? path : home + "/" + path;
    }

    private static string Str(JsonObject node, string name)
        => node[name]?.GetValue<string>() ?? throw new ConnectException("invalid_argument", $"{name} is missing.");

    /// <summary>Cordon's errors as Connect codes, as envd would have answered.</summary>
    private static ConnectException? Translate(Exception ex) => ex switch
    {
        ConnectException connect => connect,
        CordonException { Status: 404 } c => new ConnectException("not_found", c.Message),
        CordonException { Status: 409, Code: "already_exists" } c => new ConnectException("already_exists", c.Message),
        CordonException { Status: 400 } c => new ConnectException("invalid_argument", c.Message),
        CordonException { Status: 403 } c => new ConnectException("permission_denied", c.Message),
        CordonException { Status: 507 } c => new ConnectException("resource_exhausted", c.Message),
        CordonException { Status: 502 or 503 or 410 } c => new ConnectException("unavailable", c.Message),
        CordonException c => new ConnectException("internal", c.Message),
        FormatException f => new ConnectException("invalid_argument", f.Message),
        InvalidOperationException i => new ConnectException("invalid_argument", i.Message),
        _ => null,
    };
}
