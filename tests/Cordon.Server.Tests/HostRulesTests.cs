using System.Diagnostics;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>What Cordon adds to a host's network is its own, and removing it leaves the host's own configuration as
/// it was. A real server runs in a network namespace of the test's that stands in for a host with rules of its
/// own (a filter and a NAT table), so this machine's network is never touched.</summary>
public sealed class HostRulesTests
{
    private const string HostRules = """
        table inet hostown {
            chain out {
                type filter hook output priority 0; policy accept;
                tcp dport 9 counter drop
            }
        }
        table ip hostnat {
            chain post {
                type nat hook postrouting priority 100; policy accept;
                ip saddr 192.0.2.0/24 masquerade
            }
        }
        """;

    [Fact]
    public async Task LastServerOut_RemovesCordonsRules_LeavesTheHostsOwn()
    {
        var ns = "cordon-hostrules-" + Guid.NewGuid().ToString("N")[..6];
        var dir = TestPaths.NewTempDirectory("hostrules");
        await RunAsync("/usr/sbin/ip", "netns", "add", ns);
        try
        {
            await RunAsync("/usr/sbin/ip", "-n", ns, "link", "set", "lo", "up");
            await RunAsync("/usr/sbin/ip", ["netns", "exec", ns, "/usr/sbin/nft", "-f", "-"], HostRules);
            var before = await InNamespaceAsync(ns, "nft list ruleset; ip -4 addr show dev lo; cat /proc/sys/net/ipv4/ip_forward");

            var log = new System.Text.StringBuilder();
            using var server = StartServer(ns, dir, log);
            var running = "";
            for (var i = 0; i < 120 && !running.Contains("table inet cordon", StringComparison.Ordinal); i++)
            {
                if (server.HasExited)
                {
                    Assert.Fail("the server exited: " + log);
                }

                await Task.Delay(500);
                running = await InNamespaceAsync(ns, "nft list tables");
            }

            var during = await InNamespaceAsync(ns, "nft list ruleset; ip -4 addr show dev lo; cat /proc/sys/net/ipv4/ip_forward");
            Assert.Contains("table inet cordon", during, StringComparison.Ordinal);
            Assert.Contains("lo:cordon", during, StringComparison.Ordinal);
            Assert.Contains("table inet hostown", during, StringComparison.Ordinal);

            _ = Process.Start("/bin/kill", ["-TERM", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            Assert.True(server.WaitForExit(TimeSpan.FromSeconds(60)), "the server did not stop");

            var after = await InNamespaceAsync(ns, "nft list ruleset; ip -4 addr show dev lo; cat /proc/sys/net/ipv4/ip_forward");
            Assert.Equal(before, after);
        }
        finally
        {
            await RunAsync("/usr/sbin/ip", "netns", "del", ns);
            TestPaths.UnmountTree(dir);
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A server of its own in the namespace: its own data, claims and cgroup parent, so it shares nothing with
    /// the other tests' servers but the kernel.</summary>
    private static Process StartServer(string ns, string dir, System.Text.StringBuilder log)
    {
        var info = new ProcessStartInfo("/usr/sbin/ip", ["netns", "exec", ns, TestPaths.CliPath, "serve", "--listen", "127.0.0.1:7411", "--data-dir", Path.Combine(dir, "data")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["CORDON_API_KEY"] = ServerFixture.AdminKey;
        foreach (var (key, value) in new Dictionary<string, string>
        {
            ["Cordon:PrepareDefaultImage"] = "false",
            ["Cordon:UpstreamDns:0"] = TestInternet.Dns,
            ["Runtime:AgentPath"] = TestPaths.AgentPath,
            ["Runtime:BundledRuntimePath"] = TestPaths.StaticCrunPath,
            ["Runtime:Lxcfs"] = "false",
            ["Runtime:CgroupParent"] = "cordon-hostrules",
            ["Runtime:NetworkStateDirectory"] = Path.Combine(dir, "network"),
            ["Runtime:IdRangeClaims"] = Path.Combine(dir, "id-ranges"),
        })
        {
            info.Environment["CORDON_" + key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, line) => { lock (log) { log.AppendLine(line.Data); } };
        process.ErrorDataReceived += (_, line) => { lock (log) { log.AppendLine(line.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static Task<string> InNamespaceAsync(string ns, string script) => RunAsync("/usr/sbin/ip", ["netns", "exec", ns, "/bin/sh", "-c", script], null);

    private static Task<string> RunAsync(string program, params string[] args) => RunAsync(program, args, null);

    private static async Task<string> RunAsync(string program, string[] args, string? input)
    {
        var info = new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        using var process = Process.Start(info)!;
        await process.StandardInput.WriteAsync(input ?? "");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode == 0 ? await output : throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited {process.ExitCode}: {await error}");
    }
}
