using System.Diagnostics;
using Cordon.Agent.Interop;
using Cordon.Protocol;

namespace Cordon.Agent;

/// <summary>Runs a command on a pseudo-terminal (an interactive shell, E2B's <c>pty.create</c>): the agent keeps the
/// master side, the command gets the terminal as its controlling terminal and standard streams.</summary>
internal static class Terminal
{
    public static async Task RunAsync(CommandRunner runner, UserIdentity user, string program, ExecRequest request, List<string> env, string cwd, TerminalSize size, FrameStream frames, CancellationToken cancellationToken)
    {
        int master;
        string device;
        try
        {
            (master, device) = PseudoTerminal.Open();
        }
        catch (SpawnException ex)
        {
            throw new AgentException(AgentErrorCodes.Internal, $"No pseudo-terminal could be opened in the sandbox ({ex.Message}); is /dev/pts mounted?");
        }

        try
        {
            PseudoTerminal.Resize(master, size.Cols, size.Rows);
            var stopwatch = Stopwatch.StartNew();
            int pid;
            Task<int> exit;
            try
            {
                (pid, exit) = runner.Launch(user, program, request.Argv, env, cwd, -1, -1, -1, terminal: device);
            }
            catch (SpawnException ex)
            {
                await AgentServer.SendErrorAsync(frames, AgentErrorCodes.InvalidArgument, $"The command could not be started: {ex.Message}.", cancellationToken);
                return;
            }

            await frames.WriteJsonAsync(FrameKind.Started, new StartedMessage(pid), AgentJsonContext.Default.StartedMessage, cancellationToken);

            // Reads block, so the terminal's output has a thread; it ends when the last holder of the terminal
            // side is gone (read fails with EIO).
            var output = Task.Factory.StartNew(() => Pump(master, frames), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            using var timeout = new CommandTimeout(pid, request.TimeoutMs);

            using var inputStop = new CancellationTokenSource();
            var input = CommandRunner.ReadClientAsync(frames, pid, new TerminalInput(master), inputStop.Token);
            var status = await exit;
            await Task.WhenAny(output, Task.Delay(TimeSpan.FromMilliseconds(200), CancellationToken.None));
            await inputStop.CancelAsync();
            await input;
            await frames.WriteJsonAsync(FrameKind.Exit, CommandRunner.Ended(status, timeout.Expired, stopwatch), AgentJsonContext.Default.ExitMessage, cancellationToken);
        }
        finally
        {
            Libc.close(master);
        }
    }

    private static void Pump(int master, FrameStream frames)
    {
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = PseudoTerminal.Read(master, buffer)) > 0)
        {
            try
            {
                frames.WriteAsync(FrameKind.Stdout, buffer.AsMemory(0, n), CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
            {
                return;
            }
        }
    }

    /// <summary>What the client types goes to the terminal; a resize changes its size.</summary>
    private sealed class TerminalInput(int master) : ICommandInput
    {
        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            PseudoTerminal.Write(master, data.Span);
            return ValueTask.CompletedTask;
        }

        /// <summary>A terminal has no end of input to send (the shell reads ^D as typed).</summary>
        public void Close()
        {
        }

        public void Resize(TerminalSize size) => PseudoTerminal.Resize(master, size.Cols, size.Rows);
    }
}
