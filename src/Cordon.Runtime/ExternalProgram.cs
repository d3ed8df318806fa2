using System.Diagnostics;

namespace Cordon.Runtime;

/// <summary>Runs a host program by absolute path with an argv array (never a shell string) and captures
/// its output. Standard input gets what the caller gives, then is closed.</summary>
internal static class ExternalProgram
{
    /// <param name="input">Written to the program's standard input, which is then closed.</param>
    public static async Task<ExternalResult> RunAsync(string path, IEnumerable<string> args, CancellationToken cancellationToken, string? input = null)
    {
        var info = new ProcessStartInfo(path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{path} did not start.");
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input.AsMemory(), cancellationToken);
        }

        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        // What it wrote is in the pipes by now; their end comes when the last writer closes them. A descriptor of
        // theirs held by anything else (a program started at the same moment) must not make the caller wait for
        // ever: a few seconds after the exit, what has been read is the output.
        using var drained = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        drained.CancelAfter(DrainLimit);
        return new ExternalResult(process.ExitCode, await ReadOrEmptyAsync(stdout, drained.Token, cancellationToken), await ReadOrEmptyAsync(stderr, drained.Token, cancellationToken));
    }

    private static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(5);

    /// <summary>The read's text, or "" when it has not ended by <paramref name="drained"/> (a caller's own cancellation
    /// still cancels).</summary>
    private static async Task<string> ReadOrEmptyAsync(Task<string> read, CancellationToken drained, CancellationToken caller)
    {
        try
        {
            return await read.WaitAsync(drained);
        }
        catch (OperationCanceledException) when (!read.IsCompleted && !caller.IsCancellationRequested)
        {
            return "";
        }
    }
}
