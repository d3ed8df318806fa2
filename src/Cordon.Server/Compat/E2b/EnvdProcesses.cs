using System.Text.Json.Nodes;
using Cordon.Protocol;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Http;

namespace Cordon.Server.Compat.E2b;

/// <summary>envd's <c>process.Process</c> service: start, connect, list, input, signals, terminal size.</summary>
public sealed partial class Envd
{
    private Task<JsonObject> ProcessCallAsync(string path, Sandbox sandbox, CallerIdentity caller, JsonObject request, CancellationToken cancellationToken) => path switch
    {
        "/process.Process/List" => Task.FromResult(List(sandbox, caller)),
        "/process.Process/SendInput" => SendInputAsync(sandbox, caller, request, cancellationToken),
        "/process.Process/SendSignal" => SendSignalAsync(sandbox, caller, request, cancellationToken),
        "/process.Process/CloseStdin" => CloseStdinAsync(sandbox, caller, request, cancellationToken),
        "/process.Process/Update" => UpdateAsync(sandbox, caller, request, cancellationToken),
        _ => throw new ConnectException("unimplemented", $"{path} is not implemented by Cordon (client streams are not)."),
    };

    private async Task StartAsync(HttpContext context, Sandbox sandbox, CallerIdentity caller, JsonObject request)
    {
        var process = request["process"] as JsonObject ?? throw new ConnectException("invalid_argument", "process is missing.");
        var cmd = Str(process, "cmd");
        var args = (process["args"] as JsonArray)?.Select(a => a?.GetValue<string>() ?? "").ToList() ?? [];
        var envs = (process["envs"] as JsonObject)?.ToDictionary(e => e.Key, e => e.Value?.GetValue<string>() ?? "");
        var user = User(context, sandbox);
        var cwd = process["cwd"]?.GetValue<string>() is { Length: > 0 } dir ? SandboxUsers.Resolve(user ?? sandbox.DefaultUser, dir) : null;
        var timeout = ConnectRpc.Timeout(context);
        var pty = request["pty"]?["size"] is JsonObject size
            ? new TerminalSize(size["cols"]?.GetValue<int>() ?? 80, size["rows"]?.GetValue<int>() ?? 24)
            : request["pty"] is JsonObject ? new TerminalSize(80, 24) : null;
        var spec = CommandSpec.Program([cmd, .. args]) with
        {
            Env = envs,
            Cwd = cwd,
            User = user,
            TimeoutSeconds = timeout is { } t ? (int)Math.Clamp(Math.Ceiling(t.TotalSeconds), 1, options.Value.MaxTimeoutSeconds) : options.Value.MaxTimeoutSeconds,
            Stdin = pty is not null || request["stdin"]?.GetValue<bool>() == true,
            Terminal = pty,
        };

        CommandHandle handle;
        CommandHandle.Subscription live;
        try
        {
            (handle, var subscription) = await sandboxes.StartBackgroundAsync(caller, sandbox.Id, spec, subscribe: true, context.RequestAborted);
            live = subscription!;
        }
        catch (CordonException ex) when (ex.Code == ErrorCode.FileNotFound)
        {
            throw new ConnectException("invalid_argument", $"cwd '{cwd}' does not exist");
        }

        await StreamAsync(context, handle, live);
    }

    private async Task ConnectAsync(HttpContext context, Sandbox sandbox, CallerIdentity caller, JsonObject request)
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
                    var stream = handle.Spec.Terminal is not null ? "pty" : e.Stream == CommandStream.Stdout ? "stdout" : "stderr";
                    await ConnectRpc.WriteMessageAsync(context, Event("data", new JsonObject { [stream] = Convert.ToBase64String(e.Data.Span) }), cancellationToken);
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

    private JsonObject List(Sandbox sandbox, CallerIdentity caller)
    {
        var processes = new JsonArray();
        foreach (var handle in sandboxes.RunningCommands(caller, sandbox.Id))
        {
            var config = new JsonObject
            {
                ["cmd"] = handle.Spec.Argv[0],
                ["args"] = new JsonArray([.. handle.Spec.Argv.Skip(1).Select(a => (JsonNode?)JsonValue.Create(a))]),
                ["envs"] = new JsonObject([.. (handle.Spec.Env ?? new Dictionary<string, string>()).Select(e => KeyValuePair.Create(e.Key, (JsonNode?)JsonValue.Create(e.Value)))]),
            };
            if (handle.Spec.Cwd is { } cwd)
            {
                config["cwd"] = cwd;
            }

            processes.Add(new JsonObject { ["config"] = config, ["pid"] = handle.Pid });
        }

        return new JsonObject { ["processes"] = processes };
    }

    private async Task<JsonObject> SendInputAsync(Sandbox sandbox, CallerIdentity caller, JsonObject request, CancellationToken cancellationToken)
    {
        var handle = Find(sandbox, caller, request);
        await Running(handle).WriteStdinAsync(Input(request["input"] as JsonObject), close: false, cancellationToken);
        return [];
    }

    private async Task<JsonObject> SendSignalAsync(Sandbox sandbox, CallerIdentity caller, JsonObject request, CancellationToken cancellationToken)
    {
        var handle = Find(sandbox, caller, request);

        // The SDK sends SIGNAL_SIGKILL or SIGNAL_SIGTERM (enum names, or their numbers 9 and 15).
        var name = request["signal"]?.ToString() ?? "";
        var signal = Signals.Parse(name.StartsWith("SIGNAL_", StringComparison.Ordinal) ? name["SIGNAL_".Length..] : name);
        if (signal is not (Signals.Kill or Signals.Terminate))
        {
            throw new ConnectException("invalid_argument", $"signal {name} is not supported: use SIGNAL_SIGKILL or SIGNAL_SIGTERM.");
        }

        await Running(handle).SignalAsync(signal.Value, cancellationToken);
        return [];
    }

    private async Task<JsonObject> CloseStdinAsync(Sandbox sandbox, CallerIdentity caller, JsonObject request, CancellationToken cancellationToken)
    {
        await Running(Find(sandbox, caller, request)).WriteStdinAsync(ReadOnlyMemory<byte>.Empty, close: true, cancellationToken);
        return [];
    }

    /// <summary>StreamInput, the one client stream: a start naming the process, then input as it comes (keepalives
    /// between), until the request body ends; answered by one empty message and the end of the stream.</summary>
    private async Task StreamInputAsync(HttpContext context, Sandbox sandbox, CallerIdentity caller)
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
                await target.WriteStdinAsync(Input(input), close: false, context.RequestAborted);
            }
        }

        ConnectRpc.BeginStream(context);
        await ConnectRpc.WriteMessageAsync(context, new JsonObject(), context.RequestAborted);
        await ConnectRpc.EndStreamAsync(context, null);
    }

    /// <summary>Update changes a terminal's size (pty.resize).</summary>
    private async Task<JsonObject> UpdateAsync(Sandbox sandbox, CallerIdentity caller, JsonObject request, CancellationToken cancellationToken)
    {
        var handle = Running(Find(sandbox, caller, request));
        if (request["pty"]?["size"] is JsonObject size)
        {
            await handle.ResizeAsync(size["cols"]?.GetValue<int>() ?? 80, size["rows"]?.GetValue<int>() ?? 24, cancellationToken);
        }

        return [];
    }

    private CommandHandle Find(Sandbox sandbox, CallerIdentity caller, JsonObject request)
    {
        var selector = request["process"] as JsonObject;
        if (selector?["pid"] is not { } pidNode || !int.TryParse(pidNode.ToString(), out var pid))
        {
            throw new ConnectException("invalid_argument", "process.pid is missing (selecting processes by tag is not supported).");
        }

        return sandboxes.FindCommand(caller, sandbox.Id, pid) ?? throw new ConnectException("not_found", $"process with pid {pid} not found");
    }

    private static CommandHandle Running(CommandHandle handle)
        => handle.Running ? handle : throw new ConnectException("not_found", $"process with pid {handle.Pid} not found (it has ended)");

    /// <summary>ProcessInput: base64 bytes for stdin or the terminal.</summary>
    private static byte[] Input(JsonObject? input)
        => (input?["stdin"] ?? input?["pty"])?.GetValue<string>() is { } b64 ? Convert.FromBase64String(b64) : [];

    private static JsonObject Event(string kind, JsonObject body) => new() { ["event"] = new JsonObject { [kind] = body } };

    /// <summary>envd's EndEvent is Go's ProcessState: "exit status N", or "signal: killed" with exit code -1.</summary>
    private static JsonObject End(ExitMessage exit)
    {
        if (exit.Signal is { } signal)
        {
            var status = "signal: " + Signals.Describe(signal);
            return new JsonObject { ["exitCode"] = -1, ["exited"] = false, ["status"] = status, ["error"] = status };
        }

        var end = new JsonObject { ["exitCode"] = exit.ExitCode, ["exited"] = true, ["status"] = $"exit status {exit.ExitCode}" };
        if (exit.ExitCode != 0)
        {
            end["error"] = $"exit status {exit.ExitCode}";
        }

        return end;
    }
}
