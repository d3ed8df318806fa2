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

    [Fact]
    public async Task Restart_SandboxGoneMeanwhile_EndedAsLostAndCleanedUp()
    {
        var sandbox = await _server.CreateSandboxAsync();
        await _server.Server.DisposeAsync();

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
