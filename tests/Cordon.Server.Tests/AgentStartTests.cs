using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>A sandbox whose agent never answers is removed, and its history says so; a sandbox whose agent
/// answered is left alone.</summary>
public sealed class AgentStartTests
{
    [Fact]
    public async Task Create_AgentThatNeverAnswers_SandboxRemovedAsFailed()
    {
        // busybox in the agent's place starts (so crun succeeds), finds no applet named "agent" and exits.
        await using var server = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Runtime:AgentPath"] = "/bin/busybox",
            ["Cordon:AgentStartTimeout"] = "00:00:05",
        });
        var sandbox = await server.Client.CreateSandboxAsync(new CreateSandboxRequest { Image = ServerFixture.TestImage });

        var info = await WaitUntilEndedAsync(server, sandbox.Id);

        Assert.Equal("failed", info.EndReason);
        Assert.Contains(await server.Client.GetEventsAsync(sandbox.Id), e => e.Message.Contains("agent did not start", StringComparison.Ordinal));

        // The processes are gone when it reads as ended; its files follow in the background.
        var dir = Path.Combine(server.DataDir, "sandboxes", sandbox.Id);
        for (var i = 0; i < 100 && Directory.Exists(dir); i++)
        {
            await Task.Delay(100);
        }

        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public async Task Create_HealthyAgent_SandboxKeepsRunningPastTheCheck()
    {
        await using var server = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Cordon:AgentCheckDelay"] = "00:00:00.100",
        });
        await using var sandbox = await server.CreateSandboxAsync();
        await sandbox.ShAsync("true");

        await Task.Delay(TimeSpan.FromMilliseconds(500)); // well past the check
        var result = await sandbox.ShAsync("echo still here");

        Assert.Equal("running", (await server.Client.GetSandboxAsync(sandbox.Id)).State);
        Assert.Equal("still here\n", result.Stdout);
    }

    [Fact]
    public async Task Create_PausedBeforeTheCheck_NotTakenForAnAgentThatNeverStarted()
    {
        // A paused sandbox's agent is frozen and cannot answer; that is not a failed start.
        await using var server = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Cordon:AgentCheckDelay"] = "00:00:00.100",
            ["Cordon:AgentStartTimeout"] = "00:00:01",
        });
        await using var sandbox = await server.CreateSandboxAsync();
        await server.Client.PauseAsync(sandbox.Id);

        await Task.Delay(TimeSpan.FromSeconds(2)); // past the check and past the start timeout
        await server.Client.ResumeAsync(sandbox.Id);
        var result = await sandbox.ShAsync("echo resumed");

        Assert.Equal("running", (await server.Client.GetSandboxAsync(sandbox.Id)).State);
        Assert.Equal("resumed\n", result.Stdout);
    }

    private static async Task<SandboxInfo> WaitUntilEndedAsync(ServerFixture server, string id)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var info = await server.Client.GetSandboxAsync(id, limit.Token);
            if (info.State == "ended")
            {
                return info;
            }

            await Task.Delay(100, limit.Token);
        }
    }
}
