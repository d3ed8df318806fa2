using System.Diagnostics;

namespace Cordon.Testing;

/// <summary>Runs the built <c>cordon</c> command line against a test server with the admin key.</summary>
public static class CordonCli
{
    /// <param name="input">Written to its standard input, which is then closed.</param>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(ServerFixture server, string input, params string[] args)
    {
        var info = new ProcessStartInfo(TestPaths.CliPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.Environment["CORDON_URL"] = server.Address.ToString().TrimEnd('/');
        info.Environment["CORDON_API_KEY"] = ServerFixture.AdminKey;
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }
}
