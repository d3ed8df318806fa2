using System.ComponentModel;
using System.Text;
using Cordon.Server.Sandboxes;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Cordon.Server.Mcp;

/// <summary>MCP tools for commands: run (in the foreground or the background, by handle), page the output, write
/// input, signal, wait.</summary>
[McpServerToolType]
public sealed class CommandTools(SandboxService sandboxes, ToolCalls calls, IOptions<CordonOptions> options)
{
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
        [Description(ToolCalls.SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            if ((command is null) == (argv is null))
            {
                return ToolResults.Error("Give either command (a shell string) or argv (an array), not both and not neither.");
            }

            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            var spec = (command is not null ? CommandSpec.Shell(command) : CommandSpec.Program(argv!)) with
            {
                Cwd = cwd,
                Env = env,
                TimeoutSeconds = background ? timeoutSeconds ?? options.Value.MaxTimeoutSeconds : timeoutSeconds,
                Stdin = background || stdin is not null,
            };
            var (handle, _) = await sandboxes.StartBackgroundAsync(caller, sandbox.Id, spec, subscribe: false, cancellationToken);
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
                await handle.SignalAsync(Signals.Kill, CancellationToken.None);
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
        => calls.GuardAsync(caller => Task.FromResult(CommandResult(sandboxes.FindCommand(caller, handle), stdoutCursor, stderrCursor)));

    [McpServerTool(Name = "write_command_input", Title = "Write to a command's input", Destructive = false, Idempotent = false, ReadOnly = false, OpenWorld = false)]
    [Description("Write text to the standard input of a background command (add \"\\n\" to end a line); close=true closes its input afterwards (end of file).")]
    public Task<CallToolResult> WriteCommandInputAsync(
        [Description("The handle from run_command.")] string handle,
        [Description("The text to write.")] string data,
        [Description("Close standard input after writing.")] bool close = false,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            await sandboxes.FindCommand(caller, handle).WriteStdinAsync(data, close, cancellationToken);
            return ToolResults.Ok($"Wrote {data.Length} characters to {handle}{(close ? " and closed its input" : "")}.", new { handle, written = data.Length, closed = close });
        });

    [McpServerTool(Name = "signal_command", Title = "Signal a command", Destructive = true, Idempotent = false, ReadOnly = false, OpenWorld = false)]
    [Description("Send a signal to a command and its children: TERM (default, ask to stop), INT (like Ctrl-C), KILL (stop now), HUP, QUIT, USR1, USR2.")]
    public Task<CallToolResult> SignalCommandAsync(
        [Description("The handle from run_command.")] string handle,
        [Description("Signal name (TERM, INT, KILL, HUP, QUIT, USR1, USR2) or number.")] string signal = "TERM",
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            if (Signals.Parse(signal) is not { } number)
            {
                return ToolResults.Error($"'{signal}' is not a signal: use one of {Signals.Known}, or a number from 1 to 64.");
            }

            await sandboxes.FindCommand(caller, handle).SignalAsync(number, cancellationToken);
            return ToolResults.Ok($"Sent SIG{Signals.Name(number)} to {handle}. Check how it ended with wait_command.", new { handle, signal = number });
        });

    [McpServerTool(Name = "wait_command", Title = "Wait for a command", ReadOnly = true, Idempotent = true, Destructive = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(CommandOutput))]
    [Description("Wait until a command ends (or the wait times out; the command keeps running then) and return its exit code and the output since the cursors.")]
    public Task<CallToolResult> WaitCommandAsync(
        [Description("The handle from run_command.")] string handle,
        [Description("The longest to wait, in seconds (default 30, at most 600).")] int timeoutSeconds = 30,
        [Description("Character offset in stdout to read from (default 0).")] long stdoutCursor = 0,
        [Description("Character offset in stderr to read from (default 0).")] long stderrCursor = 0,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var command = sandboxes.FindCommand(caller, handle);
            await command.WaitAsync(TimeSpan.FromSeconds(Math.Clamp(timeoutSeconds, 0, 600)), cancellationToken);
            return CommandResult(command, stdoutCursor, stderrCursor);
        });

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

    /// <summary>A command's state and its output since the cursors, within the tool result's share of characters
    /// (three quarters for stdout, one for stderr).</summary>
    private CommandOutput Describe(CommandHandle handle, long stdoutCursor, long stderrCursor)
    {
        var how = $"page with read_command_output(handle=\"{handle.Id}\", stdoutCursor=…, stderrCursor=…)";
        var (stdout, outStart, outNext) = handle.Stdout.Read(stdoutCursor, int.MaxValue);
        var (stderr, errStart, errNext) = handle.Stderr.Read(stderrCursor, int.MaxValue);
        var (cappedOut, outCut) = OutputCap.Cap(stdout, calls.MaxChars * 3 / 4, how + $" from stdoutCursor={outStart}");
        var (cappedErr, errCut) = OutputCap.Cap(stderr, calls.MaxChars / 4, how + $" from stderrCursor={errStart}");
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
}
