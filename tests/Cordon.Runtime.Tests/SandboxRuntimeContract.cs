using System.Text;
using Cordon.Protocol;
using Cordon.Runtime.Agent;
using Cordon.Runtime.Images;
using Cordon.Runtime.Network;
using Cordon.Runtime.Oci;
using Cordon.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Cordon.Runtime.Tests;

/// <summary>What every <see cref="ISandboxRuntime"/> must do. Each driver inherits these tests, so drivers
/// (and any fake) cannot drift apart.</summary>
public abstract class SandboxRuntimeContract : IAsyncLifetime
{
    private readonly string _root = TestPaths.NewTempDirectory("runtime");
    private readonly List<string> _created = [];
    private OciRuntime? _runtime;
    private string _layer = "";

    protected abstract string RuntimeName { get; }

    /// <summary>The runtime program to run; null for the installed one.</summary>
    protected virtual string? RuntimePath => null;

    protected ISandboxRuntime Runtime => _runtime!;

    public async ValueTask InitializeAsync()
    {
        var store = new LayerStore(Path.Combine(_root, "images"));
        await using var tarball = BusyboxImage.CreateTarball();
        var image = await store.ImportArchiveAsync(tarball, default);
        _layer = store.PathOf(image.Layers[0]);
        _runtime = new OciRuntime(Options.Create(new OciRuntimeOptions
        {
            Runtime = RuntimeName,
            RuntimePath = RuntimePath,
            StateDirectory = Path.Combine(_root, "sandboxes"),
            RuntimeRoot = Path.Combine("/run/cordon-test", Path.GetFileName(_root)),
            AgentPath = TestPaths.AgentPath,
        }), NullLogger<OciRuntime>.Instance);
        var capabilities = await _runtime.ProbeAsync(default);
        Assert.True(capabilities.Available, string.Join("; ", capabilities.Problems));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var id in _created)
        {
            await Runtime.DestroyAsync(id, default);
        }

        _runtime?.Dispose();
        TestPaths.UnmountTree(_root);
        Directory.Delete(_root, recursive: true);
    }

    private async Task<string> CreateAsync(SandboxLimits? limits = null, IReadOnlyDictionary<string, string>? env = null, SandboxNetwork? network = null, IReadOnlyList<string>? snapshots = null, bool snapshotsOfImage = false)
    {
        var id = "t" + Guid.NewGuid().ToString("N")[..19];
        _created.Add(id);
        try
        {
            await Runtime.CreateAsync(new SandboxSpec
            {
                Id = id,
                Layers = [_layer],
                Snapshots = snapshots ?? [],
                SnapshotsOfImage = snapshotsOfImage,
                Limits = limits ?? new SandboxLimits(),
                Env = env ?? new Dictionary<string, string> { ["GREETING"] = "hello" },
                Network = network ?? SandboxNetwork.None,
            }, default);
        }
        catch (SandboxRuntimeException ex) when (ex.Detail is not null)
        {
            // What the server would log: the test's report needs it.
            throw new SandboxRuntimeException($"{ex.Message} ({ex.Detail})", ex.Detail, ex);
        }

        return id;
    }

    /// <summary>The body an HTTP GET of <paramref name="host"/> (an address, optionally with a port) got, or
    /// "refused" (a refused connection must fail at once, not hang: the timeout is far above what a refusal
    /// takes), else what went wrong. Through busybox's nc: the static busybox's wget cannot resolve in a sandbox.</summary>
    private async Task<string> FetchAsync(string id, string host)
    {
        var (address, port) = host.Contains(':', StringComparison.Ordinal) ? (host[..host.IndexOf(':', StringComparison.Ordinal)], host[(host.IndexOf(':', StringComparison.Ordinal) + 1)..]) : (host, "80");
        var (exit, stdout, stderr) = await RunAsync(id, "sh", "-c", $"printf 'GET / HTTP/1.0\r\nHost: {address}\r\n\r\n' | nc -w 15 {address} {port} 2>&1");
        var body = stdout.IndexOf("\r\n\r\n", StringComparison.Ordinal) is var at and >= 0 ? stdout[(at + 4)..] : stdout;
        return exit == 0 && stdout.StartsWith("HTTP/", StringComparison.Ordinal) ? body
            : stdout.Contains("refused", StringComparison.OrdinalIgnoreCase) ? "refused" : $"failed ({exit}): {stdout}{stderr}";
    }

    [Fact]
    public async Task Network_None_ReachesNothing()
    {
        TestInternet.EnsureUp();
        var id = await CreateAsync(network: SandboxNetwork.None);

        Assert.Equal("refused", await FetchAsync(id, TestInternet.PublicHost));
    }

    [Fact]
    public async Task Network_Internet_ReachesPublicHosts_NotPrivateHostMetadataOrOtherSandboxes()
    {
        TestInternet.EnsureUp();
        var id = await CreateAsync(network: SandboxNetwork.PublicInternet);
        var other = await CreateAsync(network: SandboxNetwork.PublicInternet);
        await using var listener = await Agent(other).StartExecAsync(new ExecRequest { Argv = ["sh", "-c", "echo listening; exec nc -ll -p 8080 -e echo other"] }, default);
        var events = listener.ReadEventsAsync(default).GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());

        Assert.StartsWith($"hello from {TestInternet.PublicHost}", await FetchAsync(id, TestInternet.PublicHost));
        Assert.Equal("refused", await FetchAsync(id, TestInternet.PrivateHost));
        Assert.Equal("refused", await FetchAsync(id, "169.254.169.254"));
        Assert.Equal("refused", await FetchAsync(id, "198.51.100.254")); // the host's own address on that link
        Assert.Equal("refused", await FetchAsync(id, $"{Runtime.AddressOf(other)}:8080"));

        // The other sandbox does listen: from inside it, it answers.
        var (exit, stdout, _) = await RunAsync(other, "sh", "-c", "nc 127.0.0.1 8080 </dev/null");
        Assert.Equal((0, "other\n"), (exit, stdout));
    }

    [Fact]
    public async Task Network_AllowRule_OpensAReservedRangeAndPort_AndNothingElse()
    {
        TestInternet.EnsureUp();
        var id = await CreateAsync(network: new SandboxNetwork
        {
            Online = true,
            Allow = [new AddressRule(System.Net.IPNetwork.Parse(TestInternet.PrivateHost + "/32"), "tcp", 80, 80)],
        });

        Assert.StartsWith($"hello from {TestInternet.PrivateHost}", await FetchAsync(id, TestInternet.PrivateHost));
        Assert.Equal("refused", await FetchAsync(id, TestInternet.PublicHost));
    }

    [Fact]
    public async Task Network_DenyRule_BeatsTheInternetDefault()
    {
        TestInternet.EnsureUp();
        var id = await CreateAsync(network: SandboxNetwork.PublicInternet with
        {
            Deny = [new AddressRule(System.Net.IPNetwork.Parse(TestInternet.OtherPublicHost + "/32"))],
        });

        Assert.StartsWith("hello", await FetchAsync(id, TestInternet.PublicHost));
        Assert.Equal("refused", await FetchAsync(id, TestInternet.OtherPublicHost));
    }

    /// <summary>The sandbox's root cannot undo its network: the namespace belongs to the host, not to the
    /// sandbox's user namespace, so addresses, routes and links stay as the host made them.</summary>
    [Fact]
    public async Task Network_SandboxRoot_CannotChangeItsInterfaceOrAddress()
    {
        var id = await CreateAsync(network: SandboxNetwork.PublicInternet);

        var (exit, stdout, _) = await RunAsync(id, "sh", "-c",
            "ip addr add 10.201.9.9/32 dev eth0 2>&1; ip link set eth0 down 2>&1; ip route del default 2>&1; ip -4 addr show eth0; ip route; ls /sys/class/net");

        Assert.Equal(0, exit);
        Assert.DoesNotContain("10.201.9.9", stdout);
        Assert.Contains(Runtime.AddressOf(id)!.ToString(), stdout);
        Assert.Contains("default via", stdout);
        Assert.Contains("not permitted", stdout, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("cdh", stdout); // the host's view of /sys does not list other sandboxes' interfaces
    }

    [Fact]
    public async Task Network_PolicyChangedToNone_CutsAnOpenConnection()
    {
        TestInternet.EnsureUp();
        var id = await CreateAsync(network: SandboxNetwork.PublicInternet);
        await using var session = await Agent(id).StartExecAsync(new ExecRequest
        {
            Argv = ["sh", "-c", $"while true; do echo ping; sleep 0.2; done | nc {TestInternet.PublicHost} 7; echo ended $?"],
            TimeoutMs = 60_000,
        }, default);
        var events = session.ReadEventsAsync(default).GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());
        Assert.StartsWith("ping", Encoding.UTF8.GetString(events.Current.Data)); // the echo answered

        await Runtime.SetNetworkAsync(id, SandboxNetwork.None, default);

        var output = new StringBuilder();
        while (await events.MoveNextAsync() && events.Current.Kind != ExecEventKind.Exit)
        {
            output.Append(Encoding.UTF8.GetString(events.Current.Data));
        }

        Assert.Equal(ExecEventKind.Exit, events.Current.Kind); // nc ended on its own, well before the 60 s timeout
        Assert.False(events.Current.Exit!.TimedOut);
        Assert.Contains("ended", output.ToString());
    }

    /// <summary>Review finding 11: an image's <c>ENV</c> cannot set the agent's own settings (its user, its
    /// working directory, its process limit, its socket). Before, the runtime's own values came later and won by
    /// that order alone; now an image's are dropped.</summary>
    [Fact]
    public async Task Create_ImageEnvNamingTheAgentsSettings_DoesNotReachTheAgent()
    {
        var id = await CreateAsync(env: new Dictionary<string, string>
        {
            ["CORDON_AGENT_USER"] = "nobody",
            ["CORDON_AGENT_CWD"] = "/proc",
            ["CORDON_AGENT_MAX_PROCESSES"] = "1",
            ["CORDON_AGENT_LISTEN_FD"] = "7",
        });

        var (exit, stdout, _) = await RunAsync(id, "sh", "-c", "id -u; pwd; (true) && (true) && echo forked");

        Assert.Equal(0, exit);
        Assert.Equal("0\n/root\nforked\n", stdout); // root's home: the image named no working directory
    }

    private AgentClient Agent(string id) => new(ct => Runtime.ConnectAgentAsync(id, ct));

    private async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string id, params string[] argv)
    {
        await using var session = await Agent(id).StartExecAsync(new ExecRequest { Argv = argv, TimeoutMs = 20_000 }, default);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var exit = -1;
        await foreach (var e in session.ReadEventsAsync(default))
        {
            switch (e.Kind)
            {
                case ExecEventKind.Stdout:
                    stdout.Append(Encoding.UTF8.GetString(e.Data));
                    break;
                case ExecEventKind.Stderr:
                    stderr.Append(Encoding.UTF8.GetString(e.Data));
                    break;
                default:
                    exit = e.Exit!.ExitCode;
                    break;
            }
        }

        return (exit, stdout.ToString(), stderr.ToString());
    }

    private static List<int> HostPidsOf(string id)
    {
        var file = new[] { $"/sys/fs/cgroup/pids/cordon/{id}/cgroup.procs", $"/sys/fs/cgroup/cordon/{id}/cgroup.procs" }.First(File.Exists);
        return [.. File.ReadAllLines(file).Where(l => l.Length > 0).Select(int.Parse)];
    }

    /// <summary>A process by its pid and its start time (field 22 of /proc/pid/stat): pids are reused quickly on a
    /// busy host (pid_max is 32768 on these machines), a start time with it is not.</summary>
    private readonly record struct HostProcess(int Pid, string StartTime)
    {
        public static HostProcess? Find(int pid) => Stat(pid) is { } fields ? new HostProcess(pid, fields[19]) : null;

        /// <summary>The same process still exists and is not a zombie.</summary>
        public bool IsAlive => Stat(Pid) is { } fields && fields[19] == StartTime && fields[0] is not ("Z" or "X");

        /// <summary>The fields after the command name: [0] is the state (field 3), [19] the start time (field 22).</summary>
        private static string[]? Stat(int pid)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    /// <summary>Nothing of the sandbox is left: files, mounts, the runtime's container, the cgroup.</summary>
    private async Task AssertReleasedAsync(string id, string bundle)
    {
        Assert.False(Directory.Exists(bundle));
        Assert.False(HasMountUnder(bundle));
        Assert.DoesNotContain(await Runtime.ListAsync(default), s => s.Id == id);
        Assert.Null(await Runtime.GetUsageAsync(id, default));
    }

    private static bool HasMountUnder(string path) => File.ReadAllText("/proc/self/mountinfo").Contains(path, StringComparison.Ordinal);

    [Fact]
    public async Task Create_ThenExec_RunsWithSandboxEnvironment()
    {
        var id = await CreateAsync();

        var (exit, stdout, _) = await RunAsync(id, "sh", "-c", "echo $GREETING from $(hostname)");

        Assert.Equal(0, exit);
        Assert.Equal($"hello from {id}\n", stdout);
    }

    [Fact]
    public async Task Exec_ExitCodeAndStderr_Reported()
    {
        var id = await CreateAsync();

        var (exit, _, stderr) = await RunAsync(id, "sh", "-c", "echo oops >&2; exit 7");

        Assert.Equal(7, exit);
        Assert.Equal("oops\n", stderr);
    }

    [Fact]
    public async Task Destroy_Twice_ReleasesEverythingAndSucceeds()
    {
        var id = await CreateAsync();
        var bundle = Path.Combine(_root, "sandboxes", id);
        Assert.True(HasMountUnder(bundle));

        await Runtime.DestroyAsync(id, default);
        await Runtime.DestroyAsync(id, default);

        await AssertReleasedAsync(id, bundle);
    }

    [Fact]
    public async Task Destroy_WithAForeignMountInItsDirectory_LeavesThatMountsFilesAndRemovesTheRest()
    {
        var id = await CreateAsync();
        var bundle = Path.Combine(_root, "sandboxes", id);
        var outside = Path.Combine(_root, "outside");
        Directory.CreateDirectory(outside);
        await File.WriteAllTextAsync(Path.Combine(outside, "keep"), "precious");
        var inside = Path.Combine(bundle, "foreign");
        Directory.CreateDirectory(inside);
        TestPaths.BindMount(outside, inside);

        await Runtime.DestroyAsync(id, default);

        Assert.Equal("precious", await File.ReadAllTextAsync(Path.Combine(outside, "keep")));
        await AssertReleasedAsync(id, bundle);
    }

    [Fact]
    public async Task Stop_KillsEveryProcess_ResourcesRemainUntilDestroy()
    {
        var id = await CreateAsync();
        // Each sleep marks that it runs in its own session before "started": ending this command (the client goes
        // away below) kills its process group, which a sleep still on its way to setsid() would be part of.
        static string Detached(string mark) => $"setsid sh -c 'touch /tmp/$0; exec sleep 300' {mark} >/dev/null 2>&1 & ";
        var script = Detached("a") + Detached("b") + "while [ ! -e /tmp/a ] || [ ! -e /tmp/b ]; do sleep 0.01; done; echo started";
        await using (var session = await Agent(id).StartExecAsync(new ExecRequest { Argv = ["sh", "-c", script] }, default))
        {
            await foreach (var e in session.ReadEventsAsync(default))
            {
                if (e.Kind == ExecEventKind.Stdout)
                {
                    break;
                }
            }
        }

        var processes = HostPidsOf(id).Select(HostProcess.Find).OfType<HostProcess>().ToList();
        Assert.True(processes.Count >= 3, $"expected the agent and two detached sleeps, found {processes.Count}");

        await Runtime.StopAsync(id, default);

        // Gone, or a zombie waiting for the host's init to reap it: nothing runs any more.
        Assert.All(processes, p => Assert.False(p.IsAlive, $"pid {p.Pid} still runs after StopAsync"));
        Assert.True(HasMountUnder(Path.Combine(_root, "sandboxes", id)));
        await Runtime.StopAsync(id, default); // idempotent
        await Runtime.DestroyAsync(id, default);
        Assert.False(HasMountUnder(Path.Combine(_root, "sandboxes", id)));
    }

    [Fact]
    public async Task Create_FailsHalfway_LeavesNothingBehind()
    {
        var id = "t" + Guid.NewGuid().ToString("N")[..19];
        var missingLayer = Path.Combine(_root, "no-such-layer");

        await Assert.ThrowsAsync<SandboxRuntimeException>(async () =>
            await Runtime.CreateAsync(new SandboxSpec { Id = id, Layers = [missingLayer] }, default));

        var bundle = Path.Combine(_root, "sandboxes", id);
        Assert.False(Directory.Exists(bundle));
        Assert.False(HasMountUnder(bundle));
        Assert.DoesNotContain(await Runtime.ListAsync(default), s => s.Id == id);
    }

    [Fact]
    public async Task ListAsync_CreatedSandbox_IsRunning()
    {
        var id = await CreateAsync();

        var found = Assert.Single(await Runtime.ListAsync(default), s => s.Id == id);
        Assert.Equal(RuntimeSandboxStatus.Running, found.Status);
    }

    [Fact]
    public async Task PauseResume_FreezesThenContinues()
    {
        var id = await CreateAsync();

        await Runtime.PauseAsync(id, default);
        Assert.Equal(RuntimeSandboxStatus.Paused, Assert.Single(await Runtime.ListAsync(default), s => s.Id == id).Status);
        await Runtime.ResumeAsync(id, default);

        Assert.Equal(0, (await RunAsync(id, "true")).ExitCode);
    }

    [Fact]
    public async Task Destroy_WhilePaused_KillsEverythingAndReleasesIt()
    {
        var id = await CreateAsync();
        var bundle = Path.Combine(_root, "sandboxes", id);
        await Runtime.PauseAsync(id, default);

        await Runtime.DestroyAsync(id, default);

        await AssertReleasedAsync(id, bundle);
    }

    [Fact]
    public async Task ClientDisconnects_CommandIsKilled()
    {
        var id = await CreateAsync();
        var session = await Agent(id).StartExecAsync(new ExecRequest { Argv = ["sleep", "300"] }, default);
        var pid = session.Pid;

        await session.DisposeAsync();

        // The agent kills the group when the client goes away; wait for it via a command that blocks until then.
        var (exit, _, _) = await RunAsync(id, "sh", "-c", $"while kill -0 {pid} 2>/dev/null; do sleep 0.05; done; echo gone");
        Assert.Equal(0, exit);
    }

    [Fact]
    public async Task Signal_RunningCommand_EndsWithThatSignal()
    {
        var id = await CreateAsync();
        await using var session = await Agent(id).StartExecAsync(new ExecRequest { Argv = ["sh", "-c", "echo ready; exec sleep 300"] }, default);

        var events = session.ReadEventsAsync(default).GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());
        Assert.Equal("ready\n", System.Text.Encoding.UTF8.GetString(events.Current.Data));
        await session.SignalAsync(15, default);
        while (await events.MoveNextAsync() && events.Current.Kind != ExecEventKind.Exit)
        {
        }

        Assert.Equal(15, events.Current.Exit!.Signal);
        Assert.Equal(128 + 15, events.Current.Exit.ExitCode);
    }

    [Fact]
    public async Task Stdin_StreamedThenClosed_ReachesCommand()
    {
        var id = await CreateAsync();
        await using var session = await Agent(id).StartExecAsync(new ExecRequest { Argv = ["sh", "-c", "wc -c"], Stdin = true }, default);

        await session.WriteStdinAsync(new byte[200_000], default);
        await session.CloseStdinAsync(default);
        var output = new StringBuilder();
        await foreach (var e in session.ReadEventsAsync(default))
        {
            output.Append(Encoding.UTF8.GetString(e.Data));
        }

        Assert.Equal("200000", output.ToString().Trim());
    }

    [Fact]
    public async Task Exec_ConcurrentCommands_AllComplete()
    {
        var id = await CreateAsync();

        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => RunAsync(id, "sh", "-c", $"echo {i}")));

        Assert.All(results, r => Assert.Equal(0, r.ExitCode));
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"{i}\n"), results.Select(r => r.Stdout));
    }

    [Fact]
    public async Task Usage_RunningSandbox_ReportsLimits()
    {
        var id = await CreateAsync(new SandboxLimits { MemoryMiB = 96 });

        var usage = await Runtime.GetUsageAsync(id, default);

        Assert.NotNull(usage);
        Assert.Equal(96L * 1024 * 1024, usage.MemoryLimitBytes);
        Assert.True(usage.Processes >= 1);
    }

    [Fact]
    public async Task ProcView_LimitedSandbox_ReportsItsOwnMemoryCpusUptimeAndSwap()
    {
        var id = await CreateAsync(new SandboxLimits { Cpus = 1, MemoryMiB = 128 });
        var expectedCpus = Math.Min(1, Environment.ProcessorCount);

        var (exit, stdout, stderr) = await RunAsync(id, "sh", "-c",
            "grep MemTotal /proc/meminfo; grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/cpu/online; " +
            "grep Cpus_allowed_list /proc/self/status; cut -d' ' -f1 /proc/uptime; wc -l < /proc/swaps; " +
            "grep -c '^cpu[0-9]' /proc/stat; wc -w < /proc/loadavg");

        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("MemTotal:         131072 kB", lines[0]);
        Assert.Equal(expectedCpus.ToString(), lines[1]);
        Assert.Equal(expectedCpus, Cgroups.CpuPlacement.Parse(lines[2]).Length);
        Assert.Equal(expectedCpus, Cgroups.CpuPlacement.Parse(lines[3].Split(':')[1]).Length);
        var uptime = double.Parse(lines[4], System.Globalization.CultureInfo.InvariantCulture);
        var hostUptime = double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(uptime < 60 && uptime < hostUptime - 1, $"sandbox uptime {uptime} s, host {hostUptime} s");
        Assert.Equal("1", lines[5].Trim()); // the header only: a sandbox has no swap
        Assert.Equal(expectedCpus.ToString(), lines[6]);
        Assert.Equal("5", lines[7].Trim());
    }

    [Fact]
    public async Task ProcView_TwoOneCpuSandboxes_RunOnDifferentCpus()
    {
        Assert.SkipWhen(Environment.ProcessorCount < 2, "one CPU: there is nothing to spread over");
        var first = await CreateAsync(new SandboxLimits { Cpus = 1 });
        var second = await CreateAsync(new SandboxLimits { Cpus = 0.5 });

        var a = (await RunAsync(first, "grep", "Cpus_allowed_list", "/proc/self/status")).Stdout;
        var b = (await RunAsync(second, "grep", "Cpus_allowed_list", "/proc/self/status")).Stdout;

        Assert.NotEqual(a, b);
    }

    [Fact]
    public async Task SandboxExited_AgentKilledFromOutside_IsReported_StopIsNot()
    {
        var stopped = await CreateAsync();
        var killed = await CreateAsync();
        var exited = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reports = new System.Collections.Concurrent.ConcurrentBag<string>();
        Runtime.SandboxExited += id =>
        {
            reports.Add(id);
            if (id == killed)
            {
                exited.TrySetResult(id);
            }
        };

        await Runtime.StopAsync(stopped, default);
        var agent = int.Parse(await File.ReadAllTextAsync(Path.Combine(_root, "sandboxes", killed, "pid")));
        Assert.Equal(0, KillProcess(agent)); // as the out-of-memory killer would

        Assert.Equal(killed, await exited.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.DoesNotContain(stopped, reports);
    }

    private static int KillProcess(int pid)
    {
        using var kill = System.Diagnostics.Process.Start("/bin/kill", ["-KILL", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        return kill.ExitCode;
    }

    /// <summary>The review's reproduction: sandboxes of many disk sizes, one after the other. Roots are kept ready for
    /// the most recent few kinds only, and ext4 templates for a few sizes; nothing else of them stays mounted.</summary>
    [Fact]
    public async Task PreparedRoots_ManyDiskSizes_StayWithinTheirBound()
    {
        var runtime = (OciRuntime)Runtime;
        for (var i = 0; i < 10; i++)
        {
            var id = await CreateAsync(new SandboxLimits { DiskMiB = 64 + i });
            await Runtime.DestroyAsync(id, default);
            _created.Remove(id);
        }

        await runtime.PreparedRoots.WhenIdleAsync();

        var prepared = Path.Combine(_root, "sandboxes", ".prepared");
        var bound = runtime.PreparedRoots.MaxKinds * 2; // two roots per kind, the contract's options' default
        Assert.InRange(Directory.EnumerateDirectories(prepared).Count(), 1, bound);
        Assert.InRange(File.ReadLines("/proc/self/mountinfo").Count(l => l.Contains(prepared, StringComparison.Ordinal)), 1, 2 * bound);
        Assert.InRange(Directory.EnumerateFiles(Path.Combine(_root, "sandboxes", ".layers", "templates")).Count(), 1, WritableLayer.MaxTemplates);
    }

    /// <summary>A built image's sandboxes stack its snapshots the same each time: their roots are prepared ahead, as a
    /// plain image's are (a create takes one: its id range is a prepared root's), and see the snapshot's files; once
    /// the snapshot is deleted, none are kept with it.</summary>
    [Fact]
    public async Task PreparedRoots_OfABuiltImage_HoldItsSnapshots()
    {
        var runtime = (OciRuntime)Runtime;
        var source = await CreateAsync();
        Assert.Equal(0, (await RunAsync(source, "sh", "-c", "echo built > /built")).ExitCode);
        var snapshot = "snap_t" + Guid.NewGuid().ToString("N")[..14];
        await Runtime.SnapshotAsync(source, snapshot, default);

        await CreateAsync(snapshots: [snapshot], snapshotsOfImage: true); // asks for the kind: roots of it are made
        await runtime.PreparedRoots.WhenIdleAsync();
        var prepared = Path.Combine(_root, "sandboxes", ".prepared");
        var ready = Directory.EnumerateDirectories(prepared).Select(d => File.ReadAllText(Path.Combine(d, "range"))).ToHashSet();

        var second = await CreateAsync(snapshots: [snapshot], snapshotsOfImage: true);
        Assert.Contains(await File.ReadAllTextAsync(Path.Combine(_root, "sandboxes", second, "range")), ready);
        Assert.Equal("built\n", (await RunAsync(second, "cat", "/built")).Stdout);

        // The snapshot deleted (its image was), the roots kept with it go: they would hold its space.
        await Runtime.DeleteSnapshotAsync(snapshot, default);
        await runtime.PreparedRoots.WhenIdleAsync();
        Assert.DoesNotContain(Directory.EnumerateDirectories(prepared), d => Directory.Exists(Path.Combine(d, "snapshot0")));
    }

    /// <summary>The runtime starts each sandbox from a mount namespace without the other sandboxes' mounts: a new
    /// namespace copies its creator's mount table, so from the host's every start cost more with every sandbox
    /// live (4,000 mounts copied and dropped per start with 2,000 live).</summary>
    [Fact]
    public async Task TheRuntimeStarts_FromAMountTable_WithoutTheLiveSandboxesMounts()
    {
        var runtime = (OciRuntime)Runtime;
        var sandboxes = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            sandboxes.Add(await CreateAsync());
        }

        var launch = await runtime.LaunchNamespaceMounts();
        var state = Path.Combine(_root, "sandboxes");
        var inHost = File.ReadLines("/proc/self/mountinfo").Count(l => l.Contains(state + "/", StringComparison.Ordinal));
        var (exit, answer, _) = await RunAsync(sandboxes[^1], "sh", "-c", "echo started && ls /");

        Assert.True(inHost >= 8, $"the host's table holds each sandbox's root and layer ({inHost} below {state})");
        Assert.DoesNotContain(launch, m => m.Point.StartsWith(state + "/", StringComparison.Ordinal) || (m.Type == "overlay" && m.Point != "/"));
        Assert.Contains(launch, m => m.Point == "/proc");
        Assert.NotNull(runtime.LastLaunchNamespace);
        Assert.NotEqual(new FileInfo("/proc/self/ns/mnt").LinkTarget, runtime.LastLaunchNamespace);
        Assert.Equal(0, exit);
        Assert.StartsWith("started\n", answer, StringComparison.Ordinal);
    }
}
