using Cordon.Protocol.Api;
using Cordon.Testing;
using Microsoft.Data.Sqlite;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The server can be killed at any moment: on start it adopts what still runs, ends what is gone
/// and removes what no record owns. Each test runs its own server on its own data directory.</summary>
public sealed class ReconcileTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public async ValueTask InitializeAsync() => _server = await ServerFixture.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Restart_RunningSandbox_IsAdoptedWithItsState()
    {
        var sandbox = await _server.CreateSandboxAsync();
        await sandbox.ShAsync("echo kept > /tmp/state");

        await _server.RestartAsync();

        var info = await _server.Client.GetSandboxAsync(sandbox.Id);
        var result = await _server.Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell("cat /tmp/state"));
        Assert.Equal("running", info.State);
        Assert.Equal("kept\n", result.Stdout);
        Assert.Contains(await _server.Client.GetEventsAsync(sandbox.Id), e => e.Kind == "adopted");
    }

    /// <summary>A restarted server takes its sandboxes' networks back: the same policy in force, its resolver at the
    /// address their resolv.conf names — even when another server started while it was down.</summary>
    [Fact]
    public async Task Restart_SandboxKeepsItsNetworkPolicyAndResolver()
    {
        TestInternet.EnsureUp();
        var name = "pkgs." + TestInternet.Domain;
        var sandbox = await _server.CreateSandboxAsync(new CreateSandboxRequest
        {
            Network = new NetworkPolicy { Internet = false, AllowOut = [name, TestInternet.PublicHost + ":7"] },
        });
        const string Probe = "nslookup {0} 2>&1 | grep -c {1}; echo ping | nc -w 5 {1} 7; nc -w 5 {2} 7 </dev/null 2>&1 || echo refused";
        var command = string.Format(System.Globalization.CultureInfo.InvariantCulture, Probe, name, TestInternet.PublicHost, TestInternet.OtherPublicHost);
        var before = await sandbox.ShAsync(command);

        await _server.Server.DisposeAsync();
        await using (await ServerFixture.StartAsync())
        {
            await _server.RestartAsync();
        }

        var after = await _server.Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell(command));
        var policy = await _server.Client.GetNetworkAsync(sandbox.Id);
        Assert.Matches("^[1-9]\\nping\\n(.|\\n)*refused\\n$", before.Stdout);
        Assert.Equal(before.Stdout, after.Stdout);
        Assert.Equal([name, TestInternet.PublicHost + ":7"], policy.AllowOut);
        Assert.False(policy.Internet);
    }

    /// <summary>Its processes killed while the server was down (an OOM killer, a crash): it comes back stopped, its
    /// files kept, and starts again; nothing of it is deleted silently.</summary>
    [Fact]
    public async Task Restart_SandboxKilledMeanwhile_IsStoppedWithItsFiles_AndStartsAgain()
    {
        var sandbox = await _server.CreateSandboxAsync();
        await sandbox.ShAsync("echo kept > /root/work");
        await _server.Server.DisposeAsync();

        // Something outside Cordon kills the sandbox while the server is down.
        var runtimeRoot = Directory.GetDirectories("/run/cordon").Select(d => Path.Combine(d, "crun"))
            .First(d => Directory.Exists(Path.Combine(d, sandbox.Id)));
        using (var kill = System.Diagnostics.Process.Start("/usr/bin/crun", ["--root", runtimeRoot, "kill", sandbox.Id, "KILL"]))
        {
            await kill.WaitForExitAsync();
        }

        await _server.RestartAsync();

        var info = await _server.Client.GetSandboxAsync(sandbox.Id);
        Assert.Equal("stopped", info.State);
        Assert.Contains(await _server.Client.GetEventsAsync(sandbox.Id), e => e.Kind == "stopped" && e.Message.Contains("files are kept", StringComparison.Ordinal));
        await _server.Client.StartAsync(sandbox.Id);
        Assert.Equal("kept\n", (await _server.Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell("cat /root/work"))).Stdout);
    }

    /// <summary>A sandbox whose file system is gone too (a host reboot unmounted it) cannot come back: it ends as lost
    /// and its leftovers are removed.</summary>
    [Fact]
    public async Task Restart_SandboxGoneMeanwhile_EndedAsLostAndCleanedUp()
    {
        var sandbox = await _server.CreateSandboxAsync();
        await _server.Server.DisposeAsync();
        foreach (var mount in new[] { "rootfs", "layer" })
        {
            using var umount = System.Diagnostics.Process.Start("/bin/umount", ["-l", Path.Combine(_server.DataDir, "sandboxes", sandbox.Id, mount)]);
            await umount.WaitForExitAsync();
        }


        // Something outside Cordon kills the sandbox while the server is down (an OOM killer, a reboot).
        var runtimeRoot = Directory.GetDirectories("/run/cordon").Select(d => Path.Combine(d, "crun"))
            .First(d => Directory.Exists(Path.Combine(d, sandbox.Id)));
        using (var kill = System.Diagnostics.Process.Start("/usr/bin/crun", ["--root", runtimeRoot, "kill", sandbox.Id, "KILL"]))
        {
            await kill.WaitForExitAsync();
        }

        await _server.RestartAsync();

        var info = await _server.Client.GetSandboxAsync(sandbox.Id);
        Assert.Equal("ended", info.State);
        Assert.Equal("lost", info.EndReason);
        Assert.False(Directory.Exists(Path.Combine(_server.DataDir, "sandboxes", sandbox.Id)));
        Assert.DoesNotContain(Path.Combine(_server.DataDir, "sandboxes", sandbox.Id), await File.ReadAllTextAsync("/proc/self/mountinfo"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Restart_SandboxWithoutRecord_RemovedAsOrphan()
    {
        var sandbox = await _server.CreateSandboxAsync();
        await _server.Server.DisposeAsync();
        using (var db = new SqliteConnection($"Data Source={Path.Combine(_server.DataDir, "cordon.db")}"))
        {
            db.Open();
            using var delete = db.CreateCommand();
            delete.CommandText = "DELETE FROM sandboxes WHERE id = $id";
            delete.Parameters.AddWithValue("$id", sandbox.Id);
            delete.ExecuteNonQuery();
        }

        await _server.RestartAsync();

        Assert.False(Directory.Exists(Path.Combine(_server.DataDir, "sandboxes", sandbox.Id)));
        Assert.DoesNotContain(Path.Combine(_server.DataDir, "sandboxes", sandbox.Id), await File.ReadAllTextAsync("/proc/self/mountinfo"), StringComparison.Ordinal);
    }
}
