using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>What the compiled seccomp filter and the agent's hardening refuse, tried from inside a sandbox by a
/// static probe (threat model rows 11 and 13).</summary>
public sealed class SyscallFilterTests(ServerAssemblyFixture fixture)
{
    [Fact]
    public async Task Sockets_OnlyUnixInetInet6AndNetlinkOpen_OtherFamiliesAreUnsupported()
    {
        await using var sandbox = await fixture.Server.CreateSandboxAsync();

        var answers = await Probe.RunAsync(sandbox, fixture.Server, "sockets");

        Assert.Equal("ok", answers["unix"]);
        Assert.Equal("ok", answers["inet"]);
        Assert.Equal("ok", answers["inet6"]);
        Assert.Equal("ok", answers["netlink"]);
        Assert.Equal("ok", answers["socketpair-unix"]);
        foreach (var refused in new[] { "vsock", "alg", "packet", "key", "bluetooth", "huge", "socketpair-inet" })
        {
            Assert.True(answers[refused] == "EAFNOSUPPORT", $"{refused}: {answers[refused]}");
        }
    }

    /// <summary>Root in the sandbox is the agent's uid: without the filter and the agent's non-dumpable state it
    /// could take the agent's control socket with pidfd_getfd, or read its environment and memory.</summary>
    [Fact]
    public async Task Agent_ItsDescriptorsEnvironmentAndMemory_AreOutOfReachOfRootInTheSandbox()
    {
        await using var sandbox = await fixture.Server.CreateSandboxAsync();

        var answers = await Probe.RunAsync(sandbox, fixture.Server, "agent");

        Assert.Equal("ok", answers["pidfd_open"]);
        Assert.Equal("EPERM", answers["pidfd_getfd"]);
        Assert.Equal("EACCES", answers["environ"]);
        Assert.Equal("EACCES", answers["mem"]);
    }

    /// <summary>PID 1 ignores the signals code in the sandbox can send it: the sandbox does not end from inside.</summary>
    [Fact]
    public async Task Agent_SignalledFromInside_KeepsRunning()
    {
        await using var sandbox = await fixture.Server.CreateSandboxAsync();

        foreach (var signal in new[] { "TERM", "INT", "HUP", "QUIT", "PIPE", "KILL" })
        {
            await sandbox.ShAsync($"kill -{signal} 1");
        }

        // An agent that took a signal to heart ends within milliseconds; this command outlasts that.
        var after = await sandbox.ShAsync("sleep 1; echo alive");

        Assert.Equal("alive\n", after.Stdout);
        Assert.Equal("running", (await fixture.Server.Client.GetSandboxAsync(sandbox.Id)).State);
    }

    /// <summary>The signals PID 1 ignores stay its own: a command starts with them at their defaults, so a pipeline
    /// ends on SIGPIPE and a command ends on SIGTERM as it would anywhere else.</summary>
    [Fact]
    public async Task Commands_StartWithDefaultSignalHandling()
    {
        await using var sandbox = await fixture.Server.CreateSandboxAsync();

        // Run without a shell: a shell sets some of its children's signals itself.
        var ignored = await sandbox.ExecAsync(ExecRequestBody.FromArgv("sed", "-n", "s/^SigIgn:[[:space:]]*//p", "/proc/self/status"));
        var mask = Convert.ToUInt64(ignored.Stdout.Trim(), 16);
        foreach (var signal in new[] { 1, 2, 3, 13, 15 })
        {
            Assert.True((mask & (1UL << (signal - 1))) == 0, $"signal {signal} is ignored in a command (SigIgn {ignored.Stdout.Trim()})");
        }

        // `yes` ends by SIGPIPE (status 128 + 13) when `head` has read enough; ignoring it, `yes` would see EPIPE and exit 1.
        var pipeline = await sandbox.ShAsync("(yes; echo $? > /tmp/yes-status) | head -c 1 > /dev/null; cat /tmp/yes-status");
        Assert.Equal("141\n", pipeline.Stdout);
    }

    /// <summary>When the agent dies all the same (the out-of-memory killer, a crash; here killed from the host), the
    /// sandbox stops at once and says why, instead of answering 502 until its timeout; its files are kept and it
    /// starts again.</summary>
    [Fact]
    public async Task Agent_KilledFromTheHost_TheSandboxStopsAtOnceWithItsReason_ItsFilesKept()
    {
        await using var sandbox = await fixture.Server.CreateSandboxAsync(new Protocol.Api.CreateSandboxRequest { TimeoutSeconds = 3600 });
        await sandbox.ShAsync("echo kept > /root/work"); // the agent answered: it ran (one that never answered did not start)
        var agent = HostProcesses.AgentOf(sandbox.Id);

        using (var kill = System.Diagnostics.Process.Start("/bin/kill", ["-KILL", agent.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        var info = await fixture.Server.Client.GetSandboxAsync(sandbox.Id);
        for (var deadline = DateTime.UtcNow.AddSeconds(10); info.State != "stopped" && DateTime.UtcNow < deadline; info = await fixture.Server.Client.GetSandboxAsync(sandbox.Id))
        {
            await Task.Delay(20); // polling the API for the state the server reaches on its own
        }

        Assert.Equal("stopped", info.State);
        Assert.Contains(await fixture.Server.Client.GetEventsAsync(sandbox.Id), e => e.Kind == "stopped" && e.Message.Contains("agent (PID 1) exited", StringComparison.Ordinal));
        await fixture.Server.Client.StartAsync(sandbox.Id);
        Assert.Equal("kept\n", (await sandbox.ShAsync("cat /root/work")).Stdout);
    }
}
