using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>Hostile code inside a sandbox: each test asserts something it must not be able to do.</summary>
public sealed class IsolationTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    [Fact]
    public async Task HostProcesses_AreInvisible()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var result = await sandbox.ShAsync("ls /proc | grep -c '^[0-9]*$'; cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '");

        var lines = result.Stdout.Split('\n', 2);
        Assert.InRange(int.Parse(lines[0]), 1, 6); // the agent, the shell and its pipeline
        Assert.DoesNotContain("dotnet", lines[1], StringComparison.Ordinal);
        Assert.DoesNotContain("testhost", lines[1], StringComparison.Ordinal);
        Assert.Contains("/.cordon/agent", lines[1], StringComparison.Ordinal);
    }

    /// <summary>The sandbox sees its own cgroup and nothing above or beside it (another sandbox's is not there), and
    /// cannot change its limits through it.</summary>
    [Fact]
    public async Task CgroupView_IsTheSandboxsOwn_ReadOnly()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { MemoryMiB = 96 });
        await using var other = await Server.CreateSandboxAsync();

        var result = await sandbox.ShAsync(
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; " +
            "ls -a /sys/fs/cgroup /sys/fs/cgroup/* /sys/fs/cgroup/*/.. 2>/dev/null; " +
            "for f in /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max; do [ -e $f ] && { echo 1 > $f && echo WROTE $f; }; done; true");

        Assert.StartsWith((96L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(other.Id, result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(sandbox.Id, result.Stdout, StringComparison.Ordinal); // no directory named for it: it is the root
        Assert.DoesNotContain("WROTE", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("Read-only file system", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostFiles_OutsideTheImage_AreUnreachable()
    {
        var secret = Path.Combine("/tmp", "cordon-secret-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(secret, "host secret");
        try
        {
            await using var sandbox = await Server.CreateSandboxAsync();

            var result = await sandbox.ShAsync($"cat {secret}; ls /tmp; cat /proc/1/root{secret}; ls {Server.DataDir}");

            Assert.DoesNotContain("host secret", result.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain(Path.GetFileName(secret), result.Stdout, StringComparison.Ordinal);
            Assert.NotEqual(0, result.ExitCode);
        }
        finally
        {
            File.Delete(secret);
        }
    }

    [Fact]
    public async Task FileApi_SymlinkToHostPath_DoesNotLeakHostFile()
    {
        var secret = Path.Combine("/tmp", "cordon-secret-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(secret, "host secret");
        try
        {
            await using var sandbox = await Server.CreateSandboxAsync();
            await sandbox.ShAsync($"ln -s {secret} /tmp/leak; ln -s /proc/1/root{secret} /tmp/leak2; ln -s ../../../../../..{secret} /tmp/leak3");

            foreach (var link in new[] { "/tmp/leak", "/tmp/leak2", "/tmp/leak3" })
            {
                using var response = await Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/files?path={link}");
                var body = await response.Content.ReadAsStringAsync();

                Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
                Assert.DoesNotContain("host secret", body, StringComparison.Ordinal);
            }
        }
        finally
        {
            File.Delete(secret);
        }
    }

    [Fact]
    public async Task FileApi_WriteThroughSymlink_StaysInsideSandbox()
    {
        var target = Path.Combine("/tmp", "cordon-target-" + Guid.NewGuid().ToString("N"));
        await using var sandbox = await Server.CreateSandboxAsync();
        await sandbox.ShAsync($"mkdir -p {Path.GetDirectoryName(target)}; ln -s {target} /tmp/out");

        await Server.Client.WriteFileAsync(sandbox.Id, "/tmp/out", new MemoryStream("written"u8.ToArray()));

        Assert.False(File.Exists(target), "a write through a sandbox symlink reached the host");
    }

    [Fact]
    public async Task MemoryHog_IsKilledAtItsLimit_AndSandboxSurvives()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { MemoryMiB = 64 });

        // A string that doubles until memory runs out.
        var hog = await sandbox.ShAsync("awk 'BEGIN { s = \"x\"; while (1) s = s s }'; echo status=$?", timeoutSeconds: 60);
        var after = await sandbox.ShAsync("echo alive");

        Assert.Contains("status=137", hog.Stdout, StringComparison.Ordinal); // SIGKILL from the OOM killer
        Assert.Equal("alive\n", after.Stdout);
    }

    [Fact]
    public async Task ForkBomb_StopsAtPidLimit_HostStaysResponsive()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { MaxProcesses = 64 });

        var bomb = await sandbox.ExecAsync(ExecRequestBody.FromShell("bomb() { bomb | bomb & }; bomb; sleep 2; echo survived") with { TimeoutSeconds = 5 });
        var processes = await ReadProcessesAsync(sandbox.Id);
        var after = await sandbox.ShAsync("echo agent answers", timeoutSeconds: 10);

        // The commands stop at 64; the agent keeps a little room of its own in the cgroup and still answers.
        Assert.True(processes <= 64 + Cordon.Runtime.Oci.OciBundleWriter.AgentProcessHeadroom, $"{processes} tasks in the sandbox");
        Assert.True(bomb.TimedOut || bomb.ExitCode != 0 || bomb.Stdout.Contains("survived", StringComparison.Ordinal));
        Assert.True(await HostIsResponsiveAsync(), "the host could not start a process");
        Assert.Equal("agent answers\n", after.Stdout);
    }

    [Fact]
    public async Task ProcessLimit_HoldsCommandsToMaxProcesses()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { MaxProcesses = 40 });

        await sandbox.ShAsync("for i in $(seq 1 100); do sleep 30 & done 2>/dev/null; true", timeoutSeconds: 20);
        var processes = await ReadProcessesAsync(sandbox.Id);
        var stat = await Server.Client.StatFileAsync(sandbox.Id, "/tmp");

        // The sleeps fill the budget (the agent's own threads count against it too), no more.
        Assert.InRange(processes, 30, 40 + Cordon.Runtime.Oci.OciBundleWriter.AgentProcessHeadroom);
        Assert.Equal("dir", stat.Type); // the agent still answers
    }

    [Fact]
    public async Task Network_HostServicesUnreachable_OnEveryHostAddress()
    {
        using var listener = new TcpListener(IPAddress.Any, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        await using var sandbox = await Server.CreateSandboxAsync(); // the server's default: the internet

        // Every IPv4 address of the host (its gateway and service addresses for sandboxes among them), and the
        // sandbox's own loopback.
        var addresses = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .Where(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            .Append(IPAddress.Loopback)
            .Distinct()
            .ToList();
        var interfaces = await sandbox.ShAsync("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort");
        var connect = await sandbox.ShAsync(string.Join("; ", addresses.Select(a => $"nc -w 5 {a} {port} </dev/null && echo {a} connected || echo {a} refused")));

        Assert.Equal("eth0\nlo\n", interfaces.Stdout);
        Assert.True(addresses.Count >= 3, string.Join(", ", addresses));
        Assert.Equal(string.Concat(addresses.Select(a => $"{a} refused\n")), connect.Stdout);
        Assert.False(listener.Pending(), "a connection from the sandbox reached a host service");
    }

    [Fact]
    public async Task Processes_DieWithTheSandbox()
    {
        var sandbox = await Server.CreateSandboxAsync();
        await sandbox.ShAsync("setsid sleep 1000 >/dev/null 2>&1 & setsid sh -c 'sleep 999' >/dev/null 2>&1 &");
        var hostPids = HostPidsOf(sandbox.Id);
        Assert.True(hostPids.Count >= 3, $"expected the agent and two sleeps, found {hostPids.Count} processes");

        await sandbox.DisposeAsync();

        Assert.All(hostPids, pid => Assert.False(IsAlive(pid), $"host pid {pid} outlived its sandbox"));
    }

    [Fact]
    public async Task NamespaceEscapes_AreRefusedBySeccomp()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var result = await sandbox.ShAsync(
            "unshare -U true 2>/dev/null && echo unshare-ok; " +
            "mkdir -p /mnt/x; mount -t tmpfs none /mnt/x 2>/dev/null && echo mount-ok; " +
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");

        Assert.DoesNotContain("unshare-ok", result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("mount-ok", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("Seccomp:\t2", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("NoNewPrivs:\t1", result.Stdout, StringComparison.Ordinal);
    }

    /// <summary>What the host's kernel exposes and a sandbox must not read: the masked directories are empty and
    /// read-only (an empty host directory bound over them), the masked files empty, and neither can be uncovered.</summary>
    [Fact]
    public async Task MaskedPaths_AreEmpty_AndStayMasked()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var result = await sandbox.ShAsync(
            "for d in /proc/acpi /sys/firmware /sys/kernel /sys/class/net /sys/fs/bpf; do [ -d $d ] && echo \"$d $(ls -A $d | wc -l)\"; done; " +
            "touch /sys/kernel/x 2>/dev/null && echo write-ok; umount /sys/kernel 2>/dev/null && echo umount-ok; umount -l /proc/acpi 2>/dev/null && echo umount-ok; " +
            "cat /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug 2>/dev/null | wc -c; ls /sys/kernel | wc -l");

        var masked = new[] { "/proc/acpi", "/sys/firmware", "/sys/kernel", "/sys/class/net", "/sys/fs/bpf" }.Where(Directory.Exists); // the host's kernel has them
        Assert.Equal(string.Concat(masked.Select(d => $"{d} 0\n")) + "0\n0\n", result.Stdout);
    }

    [Fact]
    public async Task Capabilities_ExcludeSysAdminAndFriends()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var result = await sandbox.ShAsync("grep CapBnd /proc/self/status | cut -f2");
        var caps = Convert.ToUInt64(result.Stdout.Trim(), 16);

        foreach (var (name, bit) in new[] { ("SYS_ADMIN", 21), ("SYS_MODULE", 16), ("SYS_PTRACE", 19), ("NET_ADMIN", 12), ("SYS_RAWIO", 17), ("MKNOD", 27), ("NET_RAW", 13), ("SYS_TIME", 25) })
        {
            Assert.True((caps & (1UL << bit)) == 0, $"CAP_{name} is in the bounding set");
        }
    }

    [Fact]
    public async Task RootInside_IsUnprivilegedRangeOnHost_DistinctPerSandbox()
    {
        await using var a = await Server.CreateSandboxAsync();
        await using var b = await Server.CreateSandboxAsync();

        var mapA = (await a.ShAsync("cat /proc/self/uid_map")).Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var mapB = (await b.ShAsync("cat /proc/self/uid_map")).Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("0", mapA[0]);
        Assert.True(long.Parse(mapA[1]) >= 65536, "root inside maps to a low host uid");
        Assert.Equal("65536", mapA[2].Trim());
        Assert.NotEqual(mapA[1], mapB[1]);
    }

    [Fact]
    public async Task SharedImage_WritesStayInTheWritingSandbox()
    {
        await using var a = await Server.CreateSandboxAsync();
        await using var b = await Server.CreateSandboxAsync();

        await a.ShAsync("echo tampered > /bin/busybox-note; rm -f /etc/hostname");
        var seen = await b.ShAsync("cat /bin/busybox-note 2>&1; cat /etc/hostname");

        Assert.DoesNotContain("tampered", seen.Stdout, StringComparison.Ordinal);
        Assert.Contains("busybox", seen.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AgentSocket_HasNoPathInsideTheSandbox()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        // The agent's listening socket is bound on the host and inherited: there is no socket file to replace.
        var result = await sandbox.ShAsync("find / -xdev -type s 2>/dev/null; ls -A /.cordon");

        Assert.Equal("agent\n", result.Stdout);
    }

    [Fact]
    public async Task Commands_DoNotInheritTheAgentsDescriptors()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        // Only stdin, stdout and stderr (and the directory ls itself opened to list them).
        var result = await sandbox.ShAsync("ls /proc/self/fd | sort -n | tr '\\n' ' '");

        Assert.Equal("0 1 2 3 ", result.Stdout);
        var viaShell = await sandbox.ShAsync("for fd in /proc/$$/fd/*; do readlink $fd; done | grep -c socket");
        Assert.Equal("2\n", viaShell.Stdout); // stdout and stderr are socket pairs to the agent, nothing else
    }

    [Fact]
    public async Task DiskWrites_BeyondMemoryLimit_AreNotMemory()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { MemoryMiB = 64, DiskMiB = 512 });

        var result = await sandbox.ShAsync("dd if=/dev/zero of=/tmp/big bs=1M count=256 2>/dev/null; echo status=$?; stat -c %s /tmp/big", timeoutSeconds: 120);

        Assert.Equal($"status=0\n{256L << 20}\n", result.Stdout);
    }

    [Fact]
    public async Task DiskLimit_WritesStopAtTheWritableLayerSize()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { DiskMiB = 32 });

        var result = await sandbox.ShAsync("dd if=/dev/zero of=/tmp/big bs=1M count=64; echo status=$?; stat -c %s /tmp/big", timeoutSeconds: 60);

        Assert.Contains("status=1", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("No space left", result.Stderr, StringComparison.Ordinal);
        Assert.True(long.Parse(result.Stdout.Split('\n')[1]) <= 32L << 20);
    }

    /// <summary>A process is alive unless it is gone or a zombie (dead, waiting for its parent to reap it).</summary>
    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..][0];
            return state is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static async Task<bool> HostIsResponsiveAsync()
    {
        using var process = Process.Start(new ProcessStartInfo("/bin/true") { UseShellExecute = false })!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await process.WaitForExitAsync(timeout.Token);
        return process.ExitCode == 0;
    }

    private async Task<int> ReadProcessesAsync(string id)
    {
        var metrics = await Server.Http.GetStringAsync($"/v1/sandboxes/{id}/metrics");
        return System.Text.Json.JsonDocument.Parse(metrics).RootElement.GetProperty("processes").GetInt32();
    }

    /// <summary>The host pids of every process in a sandbox, from its pids cgroup (v1) or its cgroup (v2).</summary>
    private static List<int> HostPidsOf(string id)
    {
        var candidates = new[] { $"/sys/fs/cgroup/pids/cordon/{id}/cgroup.procs", $"/sys/fs/cgroup/cordon/{id}/cgroup.procs" };
        var file = candidates.First(File.Exists);
        return [.. File.ReadAllLines(file).Where(l => l.Length > 0).Select(int.Parse)];
    }
}
