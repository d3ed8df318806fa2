using System.Net.Http.Json;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Microsoft.Data.Sqlite;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The real <c>cordon serve</c> killed with SIGKILL in the middle of a create, a pause, a stop, a snapshot
/// and a fork, then started again on the same data: nothing half-made remains, nothing that existed is lost, and
/// every sandbox is in a state it can be used from.</summary>
public sealed class CrashTests
{
    [Fact]
    public async Task Kill9_DuringEachOperation_ThenRestart_NothingHalfMade_NothingLost()
    {
        var server = await ServerProcess.StartAsync();
        var dataDir = server.DataDir;
        try
        {
            // What must survive every crash: a running, a paused and a stopped sandbox with their files, and a snapshot.
            var keep = new Dictionary<string, string>();
            foreach (var state in new[] { "running", "paused", "stopped" })
            {
                var sandbox = await server.Client.CreateSandboxAsync(new CreateSandboxRequest { Image = ServerFixture.TestImage, TimeoutSeconds = 3600 });
                await server.Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell($"echo {state} > /root/mine"));
                keep[sandbox.Id] = state;
            }

            var running = keep.Single(k => k.Value == "running").Key;
            await server.Client.PauseAsync(keep.Single(k => k.Value == "paused").Key);
            await server.Client.StopAsync(keep.Single(k => k.Value == "stopped").Key);
            var snapshot = await server.Client.CreateSnapshotAsync(running, "before-crash");

            var operations = new (string Name, Func<ServerProcess, Task> Start)[]
            {
                ("create", s => s.Client.CreateSandboxAsync(new CreateSandboxRequest { Image = ServerFixture.TestImage })),
                ("pause", s => s.Client.PauseAsync(running)),
                ("stop", s => s.Client.StopAsync(running)),
                ("snapshot", s => s.Client.CreateSnapshotAsync(running)),
                ("fork", s => s.Client.ForkAsync(running, 3)),
            };
            foreach (var (name, start) in operations)
            {
                // Running again whatever the last crash left it as, then the operation, cut short by SIGKILL.
                await server.Client.StartAsync(running);
                var pending = start(server);
                await Task.Delay(Random.Shared.Next(0, 15));
                var holders = NetworkHolders(server.Pid);
                var held = NetworkNamespacesHeld(server.Pid);
                server.Kill();
                try
                {
                    await pending; // it may have finished before the kill; cut short, its connection broke
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or IOException)
                {
                }

                await server.DisposeAsync();
                server = await ServerProcess.StartAsync(dataDir: dataDir);

                await AssertSoundAsync(server, keep, snapshot.Id, name);

                // The killed server's prepared networks are not left held for ever: it held them by descriptor (they
                // ended with it), and the restart ended the holder of any it was still making.
                Assert.NotEmpty(held);
                Assert.All(holders, pid => Assert.False(IsAlive(pid), $"after a crash in {name}: the network holder {pid} of the killed server still runs"));
            }
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    /// <summary>A crash in the instant a snapshot holds the sandbox's processes frozen (while its file system is
    /// cloned; the kill above rarely lands there): the next start thaws them, and the sandbox runs as before.</summary>
    [Fact]
    public async Task Kill9_WhileASnapshotHoldsTheSandboxFrozen_ThenRestart_ItRunsAgain()
    {
        var server = await ServerProcess.StartAsync();
        var dataDir = server.DataDir;
        try
        {
            var sandbox = await server.Client.CreateSandboxAsync(new CreateSandboxRequest { Image = ServerFixture.TestImage, TimeoutSeconds = 3600 });
            await server.Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell("echo kept > /root/mine"));

            // What the runtime's snapshot does before it clones (its mark, OciRuntime.SnapshotFreezeMark, then the freezer); the
            // crash lands right after.
            var cgroups = Runtime.Cgroups.CgroupHost.Detect();
            var mark = Path.Combine(dataDir, "sandboxes", sandbox.Id, "snapshot-freeze");
            await File.WriteAllBytesAsync(mark, []);
            Assert.True(cgroups.Freeze("cordon", sandbox.Id));
            for (var deadline = DateTime.UtcNow.AddSeconds(10); !cgroups.IsFrozen("cordon", sandbox.Id); await Task.Delay(10))
            {
                Assert.True(DateTime.UtcNow < deadline, "the sandbox's processes did not freeze within 10 s");
            }

            server.Kill();
            await server.DisposeAsync();
            server = await ServerProcess.StartAsync(dataDir: dataDir);

            Assert.False(cgroups.IsFrozen("cordon", sandbox.Id), "the restart left the sandbox's processes frozen");
            Assert.False(File.Exists(mark));
            Assert.Equal("running", (await server.Client.GetSandboxAsync(sandbox.Id)).State);
            Assert.Equal("kept\n", (await server.Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell("cat /root/mine"))).Stdout);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Kill9_DuringABuild_ThenRestart_LeavesNoBuildSandboxNoContextAndNoHalfImage()
    {
        var server = await ServerProcess.StartAsync();
        var dataDir = server.DataDir;
        try
        {
            await server.Client.BuildImageFromContextAsync("crashed-build", Context("FROM busybox\nRUN sleep 120\n"));
            for (var deadline = DateTime.UtcNow.AddSeconds(60); !(await server.Client.ListSandboxesAsync()).Any(s => s.Metadata.ContainsKey("cordon.build")); await Task.Delay(50))
            {
                Assert.True(DateTime.UtcNow < deadline, "the build's sandbox did not appear within 60 s");
            }

            Assert.NotEmpty(Directory.GetFileSystemEntries(Path.Combine(dataDir, "builds")));
            server.Kill();
            await server.DisposeAsync();
            server = await ServerProcess.StartAsync(dataDir: dataDir);

            Assert.DoesNotContain(await server.Client.ListSandboxesAsync(), s => s.Metadata.ContainsKey("cordon.build"));
            Assert.DoesNotContain(await server.Client.ListImagesAsync(), i => i.Name == "crashed-build");
            Assert.False(Directory.Exists(Path.Combine(dataDir, "builds")), "the crashed build's context was left on disk");

            // The name is free again, and builds work.
            await server.Client.BuildImageFromContextAsync("crashed-build", Context("FROM busybox\nRUN echo rebuilt > /state\n"));
            BuildEvent? last = null;
            await foreach (var e in server.Client.FollowBuildAsync("crashed-build"))
            {
                last = e;
            }

            Assert.Equal("ready", last?.Status);
        }
        finally
        {
            await server.DisposeAsync();
        }

        static MemoryStream Context(string dockerfile)
        {
            var stream = new MemoryStream();
            using (var writer = new System.Formats.Tar.TarWriter(stream, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true))
            {
                writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "Dockerfile")
                {
                    DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(dockerfile)),
                });
            }

            stream.Position = 0;
            return stream;
        }
    }

    /// <summary>The processes holding network namespaces a server is making: its children sleeping for ever.</summary>
    private static List<int> NetworkHolders(int serverPid)
        => [.. Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(d => d!.All(char.IsAsciiDigit)).Select(int.Parse!)
            .Where(pid =>
            {
                try
                {
                    var stat = File.ReadAllText($"/proc/{pid}/stat");
                    var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                    return parent == serverPid && File.ReadAllText($"/proc/{pid}/cmdline") == "/bin/sleep\0infinity\0";
                }
                catch (IOException)
                {
                    return false;
                }
            })];

    /// <summary>The network namespaces a process holds by descriptor (<c>net:[inode]</c>).</summary>
    private static List<string> NetworkNamespacesHeld(int pid)
        => [.. Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Select(LinkTargetOrNull).OfType<string>().Where(t => t.StartsWith("net:[", StringComparison.Ordinal))];

    private static string? LinkTargetOrNull(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget; // a descriptor closed meanwhile has none
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static async Task AssertSoundAsync(ServerProcess server, Dictionary<string, string> keep, string snapshotId, string operation)
    {
        var sandboxes = await server.Client.ListSandboxesAsync();

        // Nothing half-made: no sandbox still "creating"; every live one is usable from its state.
        Assert.DoesNotContain(sandboxes, s => s.State == "creating");
        foreach (var sandbox in sandboxes)
        {
            Assert.True(sandbox.State is "running" or "paused" or "stopped", $"after a crash in {operation}: {sandbox.Id} is {sandbox.State}");
            await server.Client.StartAsync(sandbox.Id);
            var alive = await server.Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell("echo alive"));
            Assert.Equal("alive\n", alive.Stdout);
        }

        // Every sandbox directory is a live sandbox's (checked before this check makes and removes its own).
        var live = (await server.Client.ListSandboxesAsync()).Select(s => s.Id).ToHashSet();
        var directories = Directory.GetDirectories(Path.Combine(server.DataDir, "sandboxes")).Select(Path.GetFileName).Where(d => !d!.StartsWith('.'));
        Assert.All(directories, d => Assert.True(live.Contains(d!), $"after a crash in {operation}: {d} is left on disk without a live sandbox"));

        // Nothing lost: the three sandboxes with their files, the snapshot usable.
        foreach (var (id, state) in keep)
        {
            Assert.Contains(sandboxes, s => s.Id == id);
            var file = await server.Client.ExecAsync(id, ExecRequestBody.FromShell("cat /root/mine"));
            Assert.Equal(state + "\n", file.Stdout);
        }

        var fromSnapshot = await server.Client.CreateSandboxAsync(new CreateSandboxRequest { Snapshot = snapshotId, Image = null });
        Assert.Equal("running\n", (await server.Client.ExecAsync(fromSnapshot.Id, ExecRequestBody.FromShell("cat /root/mine"))).Stdout);
        await server.Client.DeleteSandboxAsync(fromSnapshot.Id);
        await server.Client.PauseAsync(keep.Single(k => k.Value == "paused").Key);
        await server.Client.StopAsync(keep.Single(k => k.Value == "stopped").Key);

        // Every snapshot on disk has a finished record, and every record its files; every sandbox directory a live sandbox.
        var recorded = new List<(string Id, bool Ready)>();
        using (var db = new SqliteConnection($"Data Source={Path.Combine(server.DataDir, "cordon.db")};Mode=ReadOnly"))
        {
            db.Open();
            using var query = db.CreateCommand();
            query.CommandText = "SELECT id, ready FROM snapshots";
            using var reader = query.ExecuteReader();
            while (reader.Read())
            {
                recorded.Add((reader.GetString(0), reader.GetInt64(1) != 0));
            }
        }

        Assert.All(recorded, r => Assert.True(r.Ready, $"after a crash in {operation}: snapshot {r.Id} was left half-taken"));
        var onDisk = Directory.Exists(Path.Combine(server.DataDir, "sandboxes", ".snapshots"))
            ? Directory.GetDirectories(Path.Combine(server.DataDir, "sandboxes", ".snapshots")).Select(Path.GetFileName).Order().ToArray()
            : [];
        Assert.Equal(recorded.Select(r => r.Id).Order().ToArray(), onDisk);

        var health = await server.Http.GetFromJsonAsync<HealthReport>("/health");
        Assert.Equal("ok", health!.Status);
    }
}
