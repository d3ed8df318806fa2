using System.Diagnostics;
using Cordon.Testing;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>Other users of the host reach nothing of Cordon's: not a sandbox's files or its configuration (its
/// whole environment, secrets included), not its writable layer, not the images' layers (setuid binaries
/// included), not the database (threat model row 24).</summary>
public sealed class HostUserTests(ServerAssemblyFixture fixture)
{
    [Fact]
    public async Task HostUser_ReachesNoSandboxFileLayerImageOrDatabase()
    {
        await using var sandbox = await fixture.Server.CreateSandboxAsync(new Protocol.Api.CreateSandboxRequest { Env = new Dictionary<string, string> { ["TOKEN"] = "secret-in-env" } });
        await sandbox.ShAsync("echo content-only-the-sandbox-sees > /tmp/note.txt");
        var data = fixture.Server.DataDir;
        var dir = Path.Combine(data, "sandboxes", sandbox.Id);
        Assert.True(File.Exists(Path.Combine(dir, "config.json")), "the test must look where the sandbox's files are");

        var attempts = new Dictionary<string, string>
        {
            ["config"] = $"cat {dir}/config.json",
            ["layer"] = $"head -c 1 {dir}/layer.img",
            ["rootfs-read"] = $"cat {dir}/rootfs/tmp/note.txt",
            ["rootfs-write"] = $"echo planted > {dir}/rootfs/tmp/planted",
            ["socket"] = $"test -S {dir}/agent.sock && echo reachable",
            ["list-sandboxes"] = $"ls {data}/sandboxes",
            ["database"] = $"head -c 1 {data}/cordon.db",
            ["images"] = $"ls {data}/images",
        };
        foreach (var (name, command) in attempts)
        {
            var (exit, output) = await AsNobodyAsync(command);

            Assert.True(exit != 0, $"{name}: a host user could: {command} -> {output}");
            Assert.DoesNotContain("secret-in-env", output, StringComparison.Ordinal);
            Assert.DoesNotContain("content-only-the-sandbox-sees", output, StringComparison.Ordinal);
        }

        Assert.False(File.Exists(Path.Combine(dir, "rootfs", "tmp", "planted")));
    }

    private static async Task<(int Exit, string Output)> AsNobodyAsync(string command)
    {
        var start = new ProcessStartInfo("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "/bin/sh", "-c", command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output);
    }
}
