using System.Text;
using Cordon.Protocol;
using Cordon.Server.Auth;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>Commands in a sandbox: run to the end, streamed, or kept by handle in the background; and the other
/// live channels into a sandbox (directory watches, TCP to its ports).</summary>
public sealed partial class SandboxService
{
    /// <summary>Starts a command; the caller streams it (and disposing it kills the command).</summary>
    public async Task<RunningCommand> StartCommandAsync(CallerIdentity caller, string id, CommandSpec spec, CancellationToken cancellationToken)
    {
        var request = ToAgentRequest(spec);
        var record = RequireLive(caller, id);
        var client = AgentOf(record);
        var hold = record.Hold();
        try
        {
            var session = await AgentFailures.CallAsync(() => client.StartExecAsync(request, cancellationToken));
            return new RunningCommand(session, spec, id, hold);
        }
        catch
        {
            hold.Dispose();
            throw;
        }
    }

    /// <summary>Runs a command to its end; <paramref name="stdin"/>, when given, is written and closed first.</summary>
    public async Task<CommandResult> ExecAsync(CallerIdentity caller, string id, CommandSpec spec, string? stdin, CancellationToken cancellationToken)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        await using var command = await StartCommandAsync(caller, id, spec with { Stdin = stdin is not null }, cancellationToken);
        if (stdin is not null)
        {
            await command.WriteStdinAsync(Encoding.UTF8.GetBytes(stdin), cancellationToken);
            await command.CloseStdinAsync(cancellationToken);
        }

        using var stdout = new OutputCap(_options.MaxOutputChars, _outputBudget);
        using var stderr = new OutputCap(_options.MaxOutputChars, _outputBudget);
        ExitMessage? exit = null;
        await foreach (var e in command.ReadEventsAsync(cancellationToken))
        {
            if (e.Exit is not null)
            {
                exit = e.Exit;
            }
            else
            {
                (e.Stream == CommandStream.Stdout ? stdout : stderr).Append(e.Text);
            }
        }

        _metrics.Executed(System.Diagnostics.Stopwatch.GetElapsedTime(started));
        const string how = "stream the output to get all of it";
        return new CommandResult
        {
            ExitCode = exit!.ExitCode,
            Signal = exit.Signal,
            TimedOut = exit.TimedOut,
            DurationMs = exit.DurationMs,
            Stdout = stdout.ToText(how),
            Stderr = stderr.ToText(how),
            OutputTruncated = stdout.Truncated || stderr.Truncated,
        };
    }

    /// <summary>Starts a command whose life is not tied to the caller's request: kept by handle, its output logged
    /// (head and tail within the cap) and streamed to whoever subscribes.</summary>
    /// <param name="subscribe">Also return a live view of its output that misses nothing (taken before any is read).</param>
    public async Task<(CommandHandle Handle, CommandHandle.Subscription? Live)> StartBackgroundAsync(CallerIdentity caller, string id, CommandSpec spec, bool subscribe, CancellationToken cancellationToken)
    {
        var quota = _keys.QuotasOf(caller.KeyId)?.BackgroundCommands;
        var slot = _commandSlots.TryTake(caller.KeyId, quota) ?? throw new CordonException(
            ErrorCode.QuotaExceeded,
            _commandSlots.UsedBy(caller.KeyId) >= (quota ?? int.MaxValue)
                ? $"Your key may run {quota} background commands at once, and does: wait for one to end or stop one (signal it), then retry."
                : $"This server runs {_commandSlots.Total} background commands, its most: retry when some have ended.")
        { RetryAfterSeconds = 5 };
        try
        {
            var command = await StartCommandAsync(caller, id, spec, cancellationToken);
            return _commands.Start(caller, command, subscribe, slot);
        }
        catch
        {
            slot.Dispose();
            throw;
        }
    }

    /// <summary>The caller's background command by handle.</summary>
    /// <exception cref="CordonException"><see cref="ErrorCode.CommandNotFound"/> when unknown, forgotten or another tenant's.</exception>
    public CommandHandle FindCommand(CallerIdentity caller, string handle) => _commands.Get(caller, handle);

    /// <summary>The caller's background command with this pid in this sandbox (running, or ended within the retention).</summary>
    public CommandHandle? FindCommand(CallerIdentity caller, string sandboxId, int pid)
    {
        Find(caller, sandboxId);
        return _commands.FindByPid(caller, sandboxId, pid);
    }

    /// <summary>The caller's background commands still running in this sandbox.</summary>
    public IReadOnlyList<CommandHandle> RunningCommands(CallerIdentity caller, string sandboxId)
    {
        Find(caller, sandboxId);
        return [.. _commands.Running(caller, sandboxId)];
    }

    /// <summary>Starts watching a directory in the sandbox, for <paramref name="user"/> (who must be able to list it).</summary>
    public async Task<DirectoryWatch> WatchDirectoryAsync(CallerIdentity caller, string id, string? path, bool recursive, string? user, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        ValidateUser(user);
        var slot = _watches.TryTake(id) ?? throw new CordonException(
            ErrorCode.QuotaExceeded,
            _watches.UsedBy(id) >= _watches.PerOwner
                ? $"The sandbox already has {_watches.PerOwner} directory watches open: stop one (or watch a common parent recursively) and retry."
                : $"This server has {_watches.Total} directory watches open, its most: stop unused ones and retry.")
        { Subject = id, RetryAfterSeconds = 5 };
        try
        {
            var session = await AgentFailures.CallAsync(() => client.WatchAsync(valid, recursive, user, cancellationToken));
            return new DirectoryWatch(session, id, slot);
        }
        catch
        {
            slot.Dispose();
            throw;
        }
    }

    /// <summary>A TCP connection to a port on the sandbox's own loopback, carried by its agent.</summary>
    public async Task<Stream> ConnectPortAsync(CallerIdentity caller, string id, int port, CancellationToken cancellationToken)
    {
        var record = RequireLive(caller, id);
        Require(port is >= 1 and <= 65535, $"port {port} is not a TCP port (1-65535).");
        var hold = record.Hold(); // an open connection keeps the sandbox from counting as idle
        try
        {
            var stream = await AgentFailures.CallAsync(() => AgentOf(record).ConnectPortAsync(port, cancellationToken), ErrorCode.PortUnreachable);
            return new Runtime.PrefixedStream(ReadOnlyMemory<byte>.Empty, stream, hold);
        }
        catch
        {
            hold.Dispose();
            throw;
        }
    }

    /// <summary>Checks every field of a command and turns it into the agent's request.</summary>
    private ExecRequest ToAgentRequest(CommandSpec spec)
    {
        var argv = spec.Argv;
        Require(argv.Count > 0 && argv[0].Length > 0 && (!spec.IsShellLine || argv[2].Trim().Length > 0), "The command is empty: give the program to run.");
        Require(argv.All(a => a is not null && !a.Contains('\0', StringComparison.Ordinal)), "The command contains a NUL character.");
        Require(argv.Sum(a => (long)a.Length) < 1 << 20, "The command is longer than 1 MiB: write a script file and run that.");
        ValidateEnvironment(spec.Env, "env");
        if (spec.Cwd is not null && SandboxPaths.Validate(spec.Cwd) is { } cwdProblem)
        {
            throw CordonException.Invalid("cwd: " + cwdProblem);
        }

        var timeout = spec.TimeoutSeconds ?? _options.DefaultCommandTimeoutSeconds;
        Require(timeout >= 1 && timeout <= _options.MaxTimeoutSeconds, $"timeoutSeconds must be between 1 and {_options.MaxTimeoutSeconds}; {timeout} was asked.");
        ValidateUser(spec.User);
        if (spec.Terminal is { } size)
        {
            Require(size.Cols is >= 1 and <= 1000 && size.Rows is >= 1 and <= 1000, $"A terminal of {size.Cols}x{size.Rows} cells cannot be: columns and rows must be between 1 and 1000.");
        }

        return new ExecRequest
        {
            Argv = argv,
            Env = spec.Env,
            Cwd = spec.Cwd,
            User = spec.User,
            TimeoutMs = timeout * 1000L,
            Stdin = spec.Stdin || spec.Terminal is not null,
            Pty = spec.Terminal,
        };
    }
}
