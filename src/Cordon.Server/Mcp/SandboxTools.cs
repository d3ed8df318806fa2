using System.ComponentModel;
using System.Text;
using System.Text.Json;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Server.Api;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Cordon.Server.State;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Cordon.Server.Mcp;

/// <summary>The MCP tools: a thin adapter over <see cref="SandboxService"/>. A call that names no sandbox works
/// in the calling session's sandbox (see <see cref="SessionSandboxes"/>).</summary>
[McpServerToolType]
public sealed class SandboxTools(
    SandboxService sandboxes,
    SessionSandboxes sessions,
    BackgroundCommands commands,
    IHttpContextAccessor http,
    IOptions<CordonOptions> options)
{
    private const string SandboxIdHelp = "The sandbox to use; leave it out to use this session's sandbox (created on first use).";

    /// <summary>Goose (and others) name the agent session in every request's _meta.</summary>
    private const string AgentSessionMeta = "agent-session-id";

    private int MaxChars => options.Value.McpMaxOutputChars;

    // ---- sandboxes ------------------------------------------------------------------------------

    [McpServerTool(Name = "create_sandbox", Title = "Create a sandbox", Destructive = false, Idempotent = false, ReadOnly = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(SandboxInfo))]
    [Description("Create a new isolated Linux sandbox (Debian with Python, Node.js, git) and make it this session's sandbox: later calls without sandboxId use it. Only needed for a fresh machine or non-default resources; every other tool creates the session's sandbox on first use.")]
    public Task<CallToolResult> CreateSandboxAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Image name; the default image when left out.")] string? image = null,
        [Description("CPU cores (e.g. 0.5, 2).")] double? cpu = null,
        [Description("Memory limit in MiB.")] long? memoryMiB = null,
        [Description("Seconds without tool calls before the sandbox is destroyed; the server's session idle time when left out.")] int? timeoutSeconds = null,
        [Description("Environment variables every command in the sandbox gets.")] Dictionary<string, string>? env = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            var record = await sandboxes.CreateAsync(caller, new CreateSandboxRequest
            {
                Image = image,
                Cpu = cpu,
                MemoryMiB = memoryMiB,
                Env = env,
                TimeoutSeconds = timeoutSeconds ?? options.Value.McpSessionIdleSeconds,
                Metadata = new Dictionary<string, string> { [SessionSandboxes.MetadataKey] = SessionKey(request, caller) },
            }, cancellationToken);
            var info = record.ToInfo();
            return ToolResults.Ok($"Created sandbox {info.Id} ({info.Image}, {info.Cpu} CPU, {info.MemoryMiB} MiB); it is now this session's sandbox.", info);
        });

    [McpServerTool(Name = "list_sandboxes", Title = "List sandboxes", ReadOnly = true, Idempotent = true, Destructive = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(SandboxListOutput))]
    [Description("List the live sandboxes this key can see, and which one is this session's.")]
    public Task<CallToolResult> ListSandboxesAsync(RequestContext<CallToolRequestParams> request)
        => GuardAsync(caller =>
        {
            var session = sessions.Find(caller, SessionKey(request, caller))?.Id;
            var list = sandboxes.List(caller, includeEnded: false, metadata: null).Select(r => r.ToInfo()).ToList();
            var text = list.Count == 0
                ? "No live sandboxes. Any tool creates this session's sandbox on first use."
                : string.Join('\n', list.Select(s => $"{s.Id}  {s.State}  image={s.Image}  expires={s.ExpiresAt:u}{(s.Id == session ? "  (this session's)" : "")}"));
            return Task.FromResult(ToolResults.Ok(text, new SandboxListOutput(list, session)));
        });

    [McpServerTool(Name = "destroy_sandbox", Title = "Destroy a sandbox", Destructive = true, Idempotent = true, ReadOnly = false, OpenWorld = false)]
    [Description("Destroy a sandbox and everything in it (files, processes, code contexts). Without sandboxId, destroys this session's sandbox; the next tool call starts a fresh one.")]
    public Task<CallToolResult> DestroySandboxAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("The sandbox to destroy; this session's sandbox when left out.")] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            var id = sandboxId ?? sessions.Find(caller, SessionKey(request, caller))?.Id;
            if (id is null)
            {
                return ToolResults.Ok("This session has no sandbox; nothing to destroy.", new { destroyed = (string?)null });
            }

            await sandboxes.DestroyAsync(caller, id, "destroyed through MCP", cancellationToken);
            return ToolResults.Ok($"Destroyed sandbox {id}.", new { destroyed = id });
        });

    // ---- commands -------------------------------------------------------------------------------

    [McpServerTool(Name = "run_command", Title = "Run a command", Destructive = true, Idempotent = false, ReadOnly = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(CommandOutput))]
    [Description("Run a shell command (bash syntax via /bin/sh -c) or an argv in the sandbox and return its exit code, stdout and stderr. Long output is capped (start and end kept) with a handle and cursor to page the rest via read_command_output. For servers and long jobs use background=true: it returns a handle at once; then read_command_output, write_command_input, signal_command, wait_command.")]
    public Task<CallToolResult> RunCommandAsync(
        RequestContext<CallToolRequestParams> request,
        IProgress<ProgressNotificationValue> progress,
        [Description("A shell command line, e.g. \"pip install requests && python app.py\". Give this or argv.")] string? command = null,
        [Description("Program and arguments, run without a shell, e.g. [\"ls\", \"-la\", \"/tmp\"]. Give this or command.")] string[]? argv = null,
        [Description("Working directory (absolute); the user's home when left out.")] string? cwd = null,
        [Description("Extra environment variables.")] Dictionary<string, string>? env = null,
        [Description("Kill the command after this many seconds (default 60). For longer work use background=true.")] int? timeoutSeconds = null,
        [Description("Text written to the command's standard input, which is then closed.")] string? stdin = null,
        [Description("Start the command and return a handle at once instead of waiting for it.")] bool background = false,
        [Description(SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            if ((command is null) == (argv is null))
            {
                return ToolResults.Error("Give either command (a shell string) or argv (an array), not both and not neither.");
            }

            var sandbox = await SandboxAsync(request, caller, sandboxId, cancellationToken);
            var body = (command is not null ? ExecRequestBody.FromShell(command) : ExecRequestBody.FromArgv(argv!)) with
            {
                Cwd = cwd,
                Env = env,
                TimeoutSeconds = background ? timeoutSeconds ?? options.Value.MaxTimeoutSeconds : timeoutSeconds,
                Stdin = stdin,
            };
            var exec = sandboxes.BuildExecRequest(body);
            if (background)
            {
                exec = exec with { Stdin = true };
            }

            var session = await sandboxes.StartExecAsync(caller, sandbox.Id, exec, cancellationToken);
            var handle = commands.Start(caller, sandbox.Id, session, exec);
            if (stdin is not null)
            {
                await handle.WriteStdinAsync(stdin, close: !background, cancellationToken);
            }

            if (background)
            {
                return ToolResults.Ok(
                    $"Started in the background as {handle.Id} (pid {handle.Pid}) in sandbox {sandbox.Id}. Read its output with read_command_output(handle=\"{handle.Id}\"), wait for it with wait_command, stop it with signal_command.",
                    Describe(handle, 0, 0));
            }

            var total = 0L;
            void Report(string chunk)
            {
                total += chunk.Length;
                progress.Report(new ProgressNotificationValue { Progress = total, Message = chunk.Length > 200 ? chunk[..200] : chunk });
            }

            handle.Output += Report;
            try
            {
                await handle.WaitAsync(Timeout.InfiniteTimeSpan, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // The client cancelled: the command is killed, not left running unseen.
                await handle.SignalAsync(9, CancellationToken.None);
                throw;
            }
            finally
            {
                handle.Output -= Report;
            }

            return CommandResult(handle, 0, 0);
        });

    [McpServerTool(Name = "read_command_output", Title = "Read a command's output", ReadOnly = true, Idempotent = true, Destructive = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(CommandOutput))]
    [Description("Read the output of a command started by run_command since the given cursors (0 = from the start), and whether it is still running. Pass back the returned nextStdoutCursor/nextStderrCursor to read only what is new.")]
    public Task<CallToolResult> ReadCommandOutputAsync(
        [Description("The handle from run_command.")] string handle,
        [Description("Character offset in stdout to read from (default 0).")] long stdoutCursor = 0,
        [Description("Character offset in stderr to read from (default 0).")] long stderrCursor = 0)
        => GuardAsync(caller => Task.FromResult(CommandResult(commands.Get(caller, handle), stdoutCursor, stderrCursor)));

    [McpServerTool(Name = "write_command_input", Title = "Write to a command's input", Destructive = false, Idempotent = false, ReadOnly = false, OpenWorld = false)]
    [Description("Write text to the standard input of a background command (add \"\\n\" to end a line); close=true closes its input afterwards (end of file).")]
    public Task<CallToolResult> WriteCommandInputAsync(
        [Description("The handle from run_command.")] string handle,
        [Description("The text to write.")] string data,
        [Description("Close standard input after writing.")] bool close = false,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            await commands.Get(caller, handle).WriteStdinAsync(data, close, cancellationToken);
            return ToolResults.Ok($"Wrote {data.Length} characters to {handle}{(close ? " and closed its input" : "")}.", new { handle, written = data.Length, closed = close });
        });

    [McpServerTool(Name = "signal_command", Title = "Signal a command", Destructive = true, Idempotent = false, ReadOnly = false, OpenWorld = false)]
    [Description("Send a signal to a command and its children: TERM (default, ask to stop), INT (like Ctrl-C), KILL (stop now), HUP, QUIT, USR1, USR2.")]
    public Task<CallToolResult> SignalCommandAsync(
        [Description("The handle from run_command.")] string handle,
        [Description("Signal name (TERM, INT, KILL, HUP, QUIT, USR1, USR2) or number.")] string signal = "TERM",
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            var number = SignalNumber(signal);
            if (number is null)
            {
                return ToolResults.Error($"'{signal}' is not a signal: use TERM, INT, KILL, HUP, QUIT, USR1, USR2 or a number from 1 to 64.");
            }

            await commands.Get(caller, handle).SignalAsync(number.Value, cancellationToken);
            return ToolResults.Ok($"Sent SIG{signal.ToUpperInvariant().Replace("SIG", "", StringComparison.Ordinal)} to {handle}. Check how it ended with wait_command.", new { handle, signal = number });
        });

    [McpServerTool(Name = "wait_command", Title = "Wait for a command", ReadOnly = true, Idempotent = true, Destructive = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(CommandOutput))]
    [Description("Wait until a command ends (or the wait times out; the command keeps running then) and return its exit code and the output since the cursors.")]
    public Task<CallToolResult> WaitCommandAsync(
        [Description("The handle from run_command.")] string handle,
        [Description("The longest to wait, in seconds (default 30, at most 600).")] int timeoutSeconds = 30,
        [Description("Character offset in stdout to read from (default 0).")] long stdoutCursor = 0,
        [Description("Character offset in stderr to read from (default 0).")] long stderrCursor = 0,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            var command = commands.Get(caller, handle);
            await command.WaitAsync(TimeSpan.FromSeconds(Math.Clamp(timeoutSeconds, 0, 600)), cancellationToken);
            return CommandResult(command, stdoutCursor, stderrCursor);
        });

    // ---- code -----------------------------------------------------------------------------------

    [McpServerTool(Name = "run_code", Title = "Run code", Destructive = true, Idempotent = false, ReadOnly = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(CodeRunResult))]
    [Description("Run code in a stateful interpreter, like a notebook cell: variables, imports and functions survive between calls. Returns printed output, the value of the last expression, errors with traceback, and charts (matplotlib figures appear as images without savefig). Languages: python (IPython with numpy, pandas, matplotlib; !shell and %magics work), javascript, typescript, bash.")]
    public Task<CallToolResult> RunCodeAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("The code to run.")] string code,
        [Description("python (default), javascript, typescript or bash.")] string? language = null,
        [Description("A context id (from the REST API) to run in; the language's default context when left out.")] string? contextId = null,
        [Description("Interrupt the code after this many seconds (default 60); the interpreter keeps its state.")] int? timeoutSeconds = null,
        [Description(SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            var sandbox = await SandboxAsync(request, caller, sandboxId, cancellationToken);
            var result = await sandboxes.RunCodeAsync(caller, sandbox.Id, new RunCodeRequestBody { Code = code, Language = language, ContextId = contextId, TimeoutSeconds = timeoutSeconds }, cancellationToken);
            return CodeResult(result);
        });

    // ---- files ----------------------------------------------------------------------------------

    [McpServerTool(Name = "read_file", Title = "Read a file", ReadOnly = true, Idempotent = true, Destructive = false, OpenWorld = false)]
    [Description("Read a file from the sandbox. Text comes with line numbers; page long files with offset and limit (lines). Images (png, jpeg, gif, webp) come back as images. Other binary files: encoding=base64.")]
    public Task<CallToolResult> ReadFileAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute path, e.g. /home/user/app.py.")] string path,
        [Description("First line to return, from 1 (default 1).")] int offset = 1,
        [Description("Most lines to return (default 2000).")] int limit = 2000,
        [Description("text (default) or base64 (the raw bytes, for binary files).")] string encoding = "text",
        [Description(SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            var sandbox = await SandboxAsync(request, caller, sandboxId, cancellationToken);
            var stat = await sandboxes.StatFileAsync(caller, sandbox.Id, path, cancellationToken);
            if (stat.Type == "dir")
            {
                return ToolResults.Error($"{path} is a directory: use list_files to see what is in it.");
            }

            var cap = encoding == "base64" ? MaxChars * 3 / 4 : Math.Max(MaxChars * 4, 1 << 20);
            var imageType = ImageType(path);
            var limitBytes = imageType is not null ? 8L << 20 : (long)Math.Max(cap, 32 << 20);
            if (stat.Size > limitBytes)
            {
                return ToolResults.Error($"{path} is {stat.Size} bytes, more than one tool result should carry. Read part of it with run_command (e.g. head -c, sed -n '100,200p', or a script that summarises it).");
            }

            var bytes = await ReadAllAsync(caller, sandbox.Id, path, cancellationToken);
            if (imageType is not null && encoding != "base64")
            {
                return new CallToolResult
                {
                    Content = [new TextContentBlock { Text = $"{path}: {imageType}, {bytes.Length} bytes" }, ImageContentBlock.FromBytes(bytes, imageType)],
                };
            }

            if (encoding == "base64")
            {
                if (bytes.Length > cap)
                {
                    return ToolResults.Error($"{path} is {bytes.Length} bytes; base64 results are capped at {cap} bytes. Split it in the sandbox (split -b) or process it there.");
                }

                return new CallToolResult { Content = [new TextContentBlock { Text = Convert.ToBase64String(bytes) }] };
            }

            if (bytes.AsSpan().Contains((byte)0) || !IsUtf8(bytes))
            {
                return ToolResults.Error($"{path} is binary ({bytes.Length} bytes): read it with encoding=base64, or inspect it with run_command (file, xxd, python).");
            }

            var lines = Encoding.UTF8.GetString(bytes).Split('\n');
            var first = Math.Max(1, offset);
            var taken = lines.Skip(first - 1).Take(Math.Max(1, limit)).ToList();
            var numbered = new StringBuilder();
            for (var i = 0; i < taken.Count; i++)
            {
                numbered.Append((first + i).ToString().PadLeft(6)).Append('\t').Append(taken[i]).Append('\n');
            }

            var last = first + taken.Count - 1;
            var more = last < lines.Length ? $" Lines {first}–{last} of {lines.Length}; read on with offset={last + 1}." : "";
            var (text, cut) = ToolResults.Cap(numbered.ToString(), MaxChars, $"read fewer lines with offset and limit");
            return new CallToolResult { Content = [new TextContentBlock { Text = text + (more.Length > 0 || cut ? "\n" + more.Trim() : "") }] };
        });

    [McpServerTool(Name = "write_file", Title = "Write a file", Destructive = true, Idempotent = true, ReadOnly = false, OpenWorld = false)]
    [Description("Create or replace a file in the sandbox (parent directories are created). Text as is, or binary as base64 with encoding=base64.")]
    public Task<CallToolResult> WriteFileAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute path, e.g. /home/user/app.py.")] string path,
        [Description("The file's content.")] string content,
        [Description("text (default) or base64.")] string encoding = "text",
        [Description(SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            byte[] bytes;
            try
            {
                bytes = encoding == "base64" ? Convert.FromBase64String(content) : Encoding.UTF8.GetBytes(content);
            }
            catch (FormatException)
            {
                return ToolResults.Error("content is not valid base64; send text with encoding=text, or fix the base64.");
            }

            var sandbox = await SandboxAsync(request, caller, sandboxId, cancellationToken);
            var entry = await WriteAsync(caller, sandbox.Id, path, bytes, cancellationToken);
            return ToolResults.Ok($"Wrote {entry.Size} bytes to {entry.Path}.", entry);
        });

    [McpServerTool(Name = "edit_file", Title = "Edit a file", Destructive = true, Idempotent = false, ReadOnly = false, OpenWorld = false)]
    [Description("Replace exact text in a text file: oldText must appear exactly once (or set replaceAll). Include enough surrounding lines to make it unique; whitespace and indentation must match.")]
    public Task<CallToolResult> EditFileAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute path of the file.")] string path,
        [Description("The exact text to replace.")] string oldText,
        [Description("The text to put in its place.")] string newText,
        [Description("Replace every occurrence instead of requiring exactly one.")] bool replaceAll = false,
        [Description(SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            if (oldText.Length == 0)
            {
                return ToolResults.Error("oldText is empty: give the exact text to replace (to create a file, use write_file).");
            }

            var sandbox = await SandboxAsync(request, caller, sandboxId, cancellationToken);
            var text = Encoding.UTF8.GetString(await ReadAllAsync(caller, sandbox.Id, path, cancellationToken));
            var count = Occurrences(text, oldText);
            if (count == 0)
            {
                return ToolResults.Error($"oldText was not found in {path}. Read the file (read_file) and copy the text exactly, including whitespace.");
            }

            if (count > 1 && !replaceAll)
            {
                return ToolResults.Error($"oldText appears {count} times in {path}. Include more surrounding text to make it unique, or set replaceAll=true.");
            }

            var updated = text.Replace(oldText, newText, StringComparison.Ordinal);
            await WriteAsync(caller, sandbox.Id, path, Encoding.UTF8.GetBytes(updated), cancellationToken);
            return ToolResults.Ok($"Replaced {count} occurrence{(count == 1 ? "" : "s")} in {path}.", new { path, replacements = count });
        });

    [McpServerTool(Name = "list_files", Title = "List files", ReadOnly = true, Idempotent = true, Destructive = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(FileListing))]
    [Description("List a directory in the sandbox: names, types (file, directory, symlink) and sizes; depth > 1 descends into subdirectories.")]
    public Task<CallToolResult> ListFilesAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute directory path (default /home/user if it exists, else /root).")] string? path = null,
        [Description("How many levels to descend (1 = just this directory, at most 5).")] int depth = 1,
        [Description(SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            var sandbox = await SandboxAsync(request, caller, sandboxId, cancellationToken);
            path ??= "/root";
            var listing = await sandboxes.ListFilesAsync(caller, sandbox.Id, path, Math.Clamp(depth, 1, 5), cancellationToken);
            var lines = listing.Entries.Select(e => $"{(e.Type == "dir" ? "d" : e.Type == "symlink" ? "l" : "-")} {e.Size,12}  {e.Path}{(e.Type == "dir" ? "/" : "")}");
            var (text, _) = ToolResults.Cap(listing.Entries.Count == 0 ? $"{path} is empty." : string.Join('\n', lines), MaxChars, "list a subdirectory, or use depth=1");
            return ToolResults.Ok(text, new FileListing(SandboxPaths.Normalize(path), listing.Entries));
        });

    [McpServerTool(Name = "make_dir", Title = "Make a directory", Destructive = false, Idempotent = true, ReadOnly = false, OpenWorld = false)]
    [Description("Create a directory (and its parents) in the sandbox; nothing happens if it exists.")]
    public Task<CallToolResult> MakeDirAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute directory path.")] string path,
        [Description(SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            var sandbox = await SandboxAsync(request, caller, sandboxId, cancellationToken);
            var entry = await sandboxes.MakeDirAsync(caller, sandbox.Id, path, cancellationToken);
            return ToolResults.Ok($"{entry.Path} exists.", entry);
        });

    [McpServerTool(Name = "remove", Title = "Remove a file or directory", Destructive = true, Idempotent = true, ReadOnly = false, OpenWorld = false)]
    [Description("Delete a file, or a directory with everything in it, from the sandbox.")]
    public Task<CallToolResult> RemoveAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute path.")] string path,
        [Description(SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            var sandbox = await SandboxAsync(request, caller, sandboxId, cancellationToken);
            await sandboxes.RemoveFileAsync(caller, sandbox.Id, path, cancellationToken);
            return ToolResults.Ok($"Removed {path}.", new { removed = path });
        });

    [McpServerTool(Name = "move", Title = "Move or rename", Destructive = true, Idempotent = false, ReadOnly = false, OpenWorld = false)]
    [Description("Move or rename a file or directory in the sandbox (replaces an existing file at the destination).")]
    public Task<CallToolResult> MoveAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute path of what to move.")] string from,
        [Description("Absolute destination path.")] string to,
        [Description(SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => GuardAsync(async caller =>
        {
            var sandbox = await SandboxAsync(request, caller, sandboxId, cancellationToken);
            var entry = await sandboxes.RenameFileAsync(caller, sandbox.Id, from, to, cancellationToken);
            return ToolResults.Ok($"Moved {from} to {entry.Path}.", entry);
        });

    // ---- plumbing -------------------------------------------------------------------------------

    /// <summary>Runs a tool body; Cordon's errors become tool errors the model can act on. Anything else is a
    /// bug: logged by the SDK, reported as a generic failure.</summary>
    private async Task<CallToolResult> GuardAsync(Func<CallerIdentity, Task<CallToolResult>> body)
    {
        var context = http.HttpContext ?? throw new McpException("The MCP request carries no HTTP context; connect through /mcp.");
        try
        {
            return await body(ApiKeyMiddleware.Caller(context));
        }
        catch (CordonException ex)
        {
            return ToolResults.Error(Advice(ex));
        }
    }

    /// <summary>The API's messages point at REST endpoints; here they point at tools.</summary>
    private static string Advice(CordonException ex) => ex.Code switch
    {
        "sandbox_not_found" => ex.Message.Split(':')[0] + ". Call list_sandboxes to see the live ones, or leave sandboxId out to use this session's sandbox.",
        "sandbox_ended" => ex.Message.Split(';')[0] + ". Leave sandboxId out to use this session's sandbox, or call create_sandbox.",
        "sandbox_paused" => ex.Message.Split(':')[0] + ". Resume it through the REST API (POST /v1/sandboxes/{id}/resume), or use another sandbox.",
        "file_not_found" => ex.Message + " Use list_files to see what exists.",
        _ => ex.Message,
    };

    private async Task<SandboxRecord> SandboxAsync(RequestContext<CallToolRequestParams> request, CallerIdentity caller, string? sandboxId, CancellationToken cancellationToken)
    {
        if (sandboxId is null)
        {
            return await sessions.ResolveAsync(caller, SessionKey(request, caller), cancellationToken);
        }

        return sessions.Touch(caller, sandboxes.Get(caller, sandboxId));
    }

    /// <summary>The agent's session when the client names one in <c>_meta</c> (Goose does), else the MCP
    /// session, else (stateless clients) the API key.</summary>
    private static string SessionKey(RequestContext<CallToolRequestParams> request, CallerIdentity caller)
    {
        if (request.Params?.Meta is { } meta && meta.TryGetPropertyValue(AgentSessionMeta, out var value)
            && value?.GetValueKind() == JsonValueKind.String && value.GetValue<string>() is { Length: > 0 and <= 200 } agentSession)
        {
            return "agent:" + agentSession;
        }

        return request.Server.SessionId is { } mcpSession ? "mcp:" + mcpSession : "key:" + caller.KeyId;
    }

    private CallToolResult CommandResult(CommandHandle handle, long stdoutCursor, long stderrCursor)
    {
        var output = Describe(handle, stdoutCursor, stderrCursor);
        var text = new StringBuilder();
        if (handle.Running)
        {
            text.Append($"{handle.Id} is still running.");
        }
        else if (handle.Failure is { } failure)
        {
            text.Append(failure);
        }
        else
        {
            text.Append($"Exit code {output.ExitCode}{(output.TimedOut == true ? " (killed: it ran past its timeout; run it with background=true and a longer timeoutSeconds)" : "")}.");
        }

        if (output.Stdout.Length > 0)
        {
            text.Append("\n--- stdout ---\n").Append(output.Stdout);
        }

        if (output.Stderr.Length > 0)
        {
            text.Append("\n--- stderr ---\n").Append(output.Stderr);
        }

        return ToolResults.Ok(text.ToString(), output);
    }

    private CommandOutput Describe(CommandHandle handle, long stdoutCursor, long stderrCursor)
    {
        var how = $"page with read_command_output(handle=\"{handle.Id}\", stdoutCursor=…, stderrCursor=…)";
        var (stdout, outStart, outNext) = handle.Stdout.Read(stdoutCursor, int.MaxValue);
        var (stderr, errStart, errNext) = handle.Stderr.Read(stderrCursor, int.MaxValue);
        var (cappedOut, outCut) = ToolResults.Cap(stdout, MaxChars * 3 / 4, how + $" from stdoutCursor={outStart}");
        var (cappedErr, errCut) = ToolResults.Cap(stderr, MaxChars / 4, how + $" from stderrCursor={errStart}");
        var exit = handle.Exit;
        return new CommandOutput
        {
            Handle = handle.Id,
            SandboxId = handle.SandboxId,
            Running = handle.Running,
            ExitCode = exit?.ExitCode,
            Signal = exit?.Signal,
            TimedOut = exit?.TimedOut,
            Stdout = cappedOut,
            Stderr = cappedErr,
            Truncated = outCut || errCut || outStart > stdoutCursor || errStart > stderrCursor,
            NextStdoutCursor = outNext,
            NextStderrCursor = errNext,
        };
    }

    private CallToolResult CodeResult(CodeRunResult result)
    {
        var text = new StringBuilder();
        var images = new List<ContentBlock>();
        if (result.Stdout.Length > 0)
        {
            text.Append(result.Stdout);
        }

        if (result.Stderr.Length > 0)
        {
            text.Append("\n--- stderr ---\n").Append(result.Stderr);
        }

        foreach (var r in result.Results)
        {
            var data = r.Data ?? [];
            foreach (var mime in (string[])["image/png", "image/jpeg"])
            {
                if (data.TryGetValue(mime, out var image) && image.ValueKind == JsonValueKind.String)
                {
                    images.Add(new ImageContentBlock { Data = Encoding.ASCII.GetBytes(image.GetString()!), MimeType = mime });
                    text.Append($"\n[{(r.IsMainResult == true ? "result" : "figure")}: {mime}, shown as an image]");
                    break;
                }
            }

            if (data.TryGetValue("text/plain", out var plain) && !data.ContainsKey("image/png") && !data.ContainsKey("image/jpeg"))
            {
                text.Append(r.IsMainResult == true ? "\nOut: " : "\n").Append(plain.GetString());
            }
        }

        if (result.Error is { } error)
        {
            text.Append($"\n{error.Name}: {error.Value}");
            if (error.Traceback.Count > 0)
            {
                text.Append('\n').Append(string.Join('\n', error.Traceback));
            }

            text.Append(result.Status switch
            {
                CodeRunStatus.Timeout => "\nThe code ran past its timeout and was interrupted; the interpreter kept its state. Give timeoutSeconds more, or start long work with run_command background=true.",
                CodeRunStatus.Died => "\nThe interpreter died; its state is lost. Run code again to start a fresh one.",
                _ => "",
            });
        }

        var (capped, _) = ToolResults.Cap(text.ToString().Trim(), MaxChars, "print less, or write the output to a file and read parts of it with read_file");
        var structured = result with
        {
            // Images travel as image content; the structured copy only says they were there.
            Results = [.. result.Results.Select(r => r with { Data = r.Data?.ToDictionary(d => d.Key, d => d.Key.StartsWith("image/", StringComparison.Ordinal) && d.Key != "image/svg+xml" ? JsonSerializer.SerializeToElement("(image content)") : d.Value) })],
        };
        var call = ToolResults.Ok(capped.Length == 0 ? $"(no output; status {result.Status})" : capped, structured, [.. images]);
        call.IsError = result.Status is CodeRunStatus.Error or CodeRunStatus.Timeout or CodeRunStatus.Died ? true : null;
        return call;
    }

    private async Task<byte[]> ReadAllAsync(CallerIdentity caller, string sandboxId, string path, CancellationToken cancellationToken)
    {
        await using var download = await sandboxes.ReadFileAsync(caller, sandboxId, path, cancellationToken);
        using var buffer = new MemoryStream();
        await download.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }

    /// <summary>Writes a whole file; the agent creates missing parent directories itself.</summary>
    private async Task<FileEntry> WriteAsync(CallerIdentity caller, string sandboxId, string path, byte[] bytes, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(bytes);
        return await sandboxes.WriteFileAsync(caller, sandboxId, path, content, mode: null, user: null, cancellationToken);
    }

    private static int Occurrences(string text, string value)
    {
        var count = 0;
        for (var at = text.IndexOf(value, StringComparison.Ordinal); at >= 0; at = text.IndexOf(value, at + value.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    private static bool IsUtf8(byte[] bytes) => System.Text.Unicode.Utf8.IsValid(bytes);

    private static string? ImageType(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".png" => "image/png",
        ".jpg" or ".jpeg" => "image/jpeg",
        ".gif" => "image/gif",
        ".webp" => "image/webp",
        _ => null,
    };

    private static int? SignalNumber(string signal)
    {
        if (int.TryParse(signal, out var n))
        {
            return n is >= 1 and <= 64 ? n : null;
        }

        return signal.ToUpperInvariant().Replace("SIG", "", StringComparison.Ordinal) switch
        {
            "HUP" => 1,
            "INT" => 2,
            "QUIT" => 3,
            "KILL" => 9,
            "USR1" => 10,
            "USR2" => 12,
            "TERM" => 15,
            _ => null,
        };
    }
}

/// <summary>list_sandboxes' structured result.</summary>
public sealed record SandboxListOutput(IReadOnlyList<SandboxInfo> Sandboxes, string? SessionSandboxId);

/// <summary>A command's state and output since the cursors (run_command, read_command_output, wait_command).</summary>
public sealed record CommandOutput
{
    public required string Handle { get; init; }

    public required string SandboxId { get; init; }

    public bool Running { get; init; }

    public int? ExitCode { get; init; }

    public int? Signal { get; init; }

    public bool? TimedOut { get; init; }

    public string Stdout { get; init; } = "";

    public string Stderr { get; init; } = "";

    /// <summary>Part of the output is not in this result; the cursors page through it.</summary>
    public bool Truncated { get; init; }

    public long NextStdoutCursor { get; init; }

    public long NextStderrCursor { get; init; }
}
