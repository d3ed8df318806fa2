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

        return new ExternalResult(process.ExitCode, await stdout, await stderr);
    }
}
