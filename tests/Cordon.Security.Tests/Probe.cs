using System.Diagnostics;
using Cordon.Protocol.Api;
using Cordon.Testing;

namespace Cordon.Security.Tests;

/// <summary>Probes/probe.c, built static with the host's gcc (./cordon installs it) so it runs in any image, and
/// run inside a sandbox: it tries what a sandbox must not be able to do and prints one line per attempt
/// (<c>what ok</c> or <c>what ERRNO</c>). It calls the kernel directly, so what it reports is what the compiled
/// seccomp filter and the kernel allow, not what a policy list says.</summary>
internal static class Probe
{
    private static readonly Lazy<string> Binary = new(Build);

    /// <summary>Runs the probe's <paramref name="mode"/> in the sandbox as <paramref name="user"/>; its answers by name.</summary>
    public static async Task<IReadOnlyDictionary<string, string>> RunAsync(TestSandbox sandbox, ServerFixture server, string mode, string? user = null)
    {
        await using (var binary = File.OpenRead(Binary.Value))
        {
            await server.Client.WriteFileAsync(sandbox.Id, "/tmp/probe", binary);
        }

        await sandbox.ShAsync("chmod 755 /tmp/probe");
        var result = await sandbox.ExecAsync(ExecRequestBody.FromArgv("/tmp/probe", mode) with { User = user });
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"the probe exited {result.ExitCode}: {result.Stderr}");
        }

        return result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', 2))
            .ToDictionary(parts => parts[0], parts => parts[1]);
    }

    private static string Build()
    {
        var source = Path.Combine(TestPaths.RepositoryRoot, "tests", "Cordon.Security.Tests", "Probes", "probe.c");
        var output = Path.Combine(Path.GetTempPath(), $"cordon-probe-{Environment.ProcessId}");
        using var gcc = Process.Start(new ProcessStartInfo("gcc", ["-static", "-O1", "-o", output, source]) { RedirectStandardError = true })!;
        var errors = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        return gcc.ExitCode == 0 ? output : throw new InvalidOperationException("gcc could not build the probe (./cordon installs gcc and libc6-dev): " + errors);
    }
}
