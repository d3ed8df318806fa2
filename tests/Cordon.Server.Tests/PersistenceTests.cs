using System.Net;
using System.Net.Http.Json;
using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>Keeping the work, through the REST API of the assembly's server: snapshots, forks, stop and start, pause
/// cycles, timers and autoResume, each against real sandboxes.</summary>
public sealed class PersistenceTests(ServerAssemblyFixture fixture)
{
    private CordonClient Client => fixture.Server.Client;

    private async Task<TestSandbox> CreateAsync(CreateSandboxRequest? request = null) => await fixture.Server.CreateSandboxAsync(request);

    private async Task<string> ShAsync(string id, string command)
    {
        var result = await Client.ExecAsync(id, ExecRequestBody.FromShell(command));
        Assert.True(result.ExitCode == 0, $"'{command}' exited {result.ExitCode}: {result.Stderr}");
        return result.Stdout;
    }

    /// <summary>A writer renames each file into place and then lists it in an index: in a consistent snapshot every
    /// name the index holds is a complete file, and the index holds every file but perhaps the last.</summary>
    [Fact]
    public async Task Snapshot_WhileAProcessWrites_NewSandboxSeesAConsistentTree()
    {
        await using var source = await CreateAsync();
        await ShAsync(source.Id, "mkdir /work; (i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo $i > /work/.t; mv /work/.t /work/f$i; echo $i >> /work/index; done) >/dev/null 2>&1 &");
        await ShAsync(source.Id, "while [ ! -s /work/index ] || [ $(wc -l < /work/index) -lt 200 ]; do usleep 2000; done");

        var snapshot = await Client.CreateSnapshotAsync(source.Id, "consistent-" + Guid.NewGuid().ToString("N")[..8]);
        await using var copy = await CreateAsync(new CreateSandboxRequest { Snapshot = snapshot.Name });

        var check = await ShAsync(copy.Id,
            "n=$(wc -l < /work/index); files=$(ls /work | grep -c '^f'); bad=0; for i in $(cat /work/index); do [ \"$(cat /work/f$i)\" = \"$i\" ] || bad=$((bad+1)); done; echo $n $files $bad");
        var parts = check.Split(' ', StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        Assert.True(parts[0] >= 200, check);
        Assert.Equal(0, parts[2]);
        Assert.InRange(parts[1] - parts[0], 0, 1);

        // The original went on writing; the copy is frozen at the instant of the snapshot.
        var later = int.Parse(await ShAsync(source.Id, "wc -l < /work/index"), System.Globalization.CultureInfo.InvariantCulture);
        var copied = int.Parse(await ShAsync(copy.Id, "wc -l < /work/index"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(later > parts[0], $"the source wrote on: {later} > {parts[0]}");
        Assert.Equal(parts[0], copied);
        await Client.DeleteSandboxAsync(copy.Id);
        await Client.DeleteSnapshotAsync(snapshot.Id);
    }

    [Fact]
    public async Task Snapshot_KeepsFilesOwnersAndDeletions_AndStacksOnASnapshot()
    {
        await using var source = await CreateAsync();
        await ShAsync(source.Id, "echo one > /root/one; mkdir -p /srv/a; echo x > /srv/a/x; chown 1234:5678 /srv/a/x; rm /bin/vi");
        var first = await Client.CreateSnapshotAsync(source.Id);
        await using var second = await CreateAsync(new CreateSandboxRequest { Snapshot = first.Id });
        Assert.Equal("one\n1234:5678\nno vi\n", await ShAsync(second.Id, "cat /root/one; stat -c %u:%g /srv/a/x; [ -e /bin/vi ] || echo no vi"));
        await ShAsync(second.Id, "echo two > /root/two; rm /root/one");
        var stacked = await Client.CreateSnapshotAsync(second.Id);
        await using var third = await CreateAsync(new CreateSandboxRequest { Snapshot = stacked.Id });

        Assert.Equal("two\nno one\n1234:5678\n", await ShAsync(third.Id, "cat /root/two; [ -e /root/one ] || echo no one; stat -c %u:%g /srv/a/x"));
        Assert.Equal(stacked.Id, (await Client.GetSandboxAsync(third.Id)).Snapshot);

        // In use (by a sandbox, or by a snapshot stacked on it): never deleted under them.
        var refused = await Assert.ThrowsAsync<CordonApiException>(() => Client.DeleteSnapshotAsync(first.Name));
        Assert.Equal(409, refused.Status);
        Assert.Equal("snapshot_in_use", refused.Code);
        await Client.DeleteSandboxAsync(third.Id);
        await Client.DeleteSnapshotAsync(stacked.Name);
        await Client.DeleteSandboxAsync(second.Id);
        await Client.DeleteSnapshotAsync(first.Name);
        Assert.DoesNotContain(await Client.ListSnapshotsAsync(), s => s.Id == first.Id || s.Id == stacked.Id);
    }

    [Fact]
    public async Task Fork_Of5_EachDivergesWithoutAffectingTheOthers()
    {
        await using var source = await CreateAsync(new CreateSandboxRequest { Env = new Dictionary<string, string> { ["ORIGIN"] = "yes" } });
        await ShAsync(source.Id, "echo base > /root/state");

        var forks = await Client.ForkAsync(source.Id, 5);
        Assert.Equal(5, forks.Count);
        Assert.All(forks, f => Assert.Null(f.Error));
        var ids = forks.Select(f => f.Sandbox!.Id).ToList();
        Assert.Equal(5, ids.Distinct().Count());
        foreach (var id in ids)
        {
            await ShAsync(id, $"echo {id} >> /root/state");
        }

        foreach (var id in ids)
        {
            Assert.Equal($"base\n{id}\nyes\n", await ShAsync(id, "cat /root/state; echo $ORIGIN"));
        }

        Assert.Equal("base\n", await ShAsync(source.Id, "cat /root/state"));
        Assert.Contains(await Client.GetEventsAsync(source.Id), e => e.Kind == "forked" && ids.All(id => e.Message.Contains(id, StringComparison.Ordinal)));
        foreach (var id in ids)
        {
            await Client.DeleteSandboxAsync(id);
        }
    }

    [Fact]
    public async Task Stop_EndsProcessesKeepsFiles_StartRunsAgain_TwentyTimes()
    {
        await using var sandbox = await CreateAsync();
        await ShAsync(sandbox.Id, "mkdir -p /data; for i in 1 2 3 4 5; do echo file$i > /data/f$i; done; sleep 1000 >/dev/null 2>&1 &");
        for (var cycle = 1; cycle <= 20; cycle++)
        {
            var stopped = await Client.StopAsync(sandbox.Id);
            Assert.Equal("stopped", stopped.State);
            Assert.NotNull(stopped.StoppedAt);
            var refused = await Assert.ThrowsAsync<CordonApiException>(() => Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell("true")));
            Assert.Equal("sandbox_stopped", refused.Code);

            Assert.Equal("running", (await Client.StartAsync(sandbox.Id)).State);
            if (cycle is 2 or 5 or 20)
            {
                // E2B #884: files gone after the second resume. Here every file stays, and the processes started anew.
                Assert.Equal("file1\nfile2\nfile3\nfile4\nfile5\n0\n", await ShAsync(sandbox.Id, $"cat /data/f*; echo c{cycle} >> /data/cycles; ps | grep -c '[s]leep 1000' || true"));
            }
        }

        Assert.Equal("c2\nc5\nc20\n", await ShAsync(sandbox.Id, "cat /data/cycles"));
        var events = await Client.GetEventsAsync(sandbox.Id);
        Assert.Equal(20, events.Count(e => e.Kind == "stopped"));
        Assert.Equal(20, events.Count(e => e.Kind == "started" && e.Message.Contains("again", StringComparison.Ordinal)));
    }

    /// <summary>A process counting as fast as it can through 100 pauses: every count it made is there after each
    /// resume, and it counts on.</summary>
    [Fact]
    public async Task PauseResume_100Cycles_ACountingProcessNeverLosesACount()
    {
        await using var sandbox = await CreateAsync();
        await ShAsync(sandbox.Id, "(i=0; while true; do i=$((i+1)); echo $i > /tmp/.c; mv /tmp/.c /tmp/c; done) >/dev/null 2>&1 &");
        var last = 0L;
        for (var cycle = 0; cycle < 100; cycle++)
        {
            Assert.Equal("paused", (await Client.PauseAsync(sandbox.Id)).State);
            Assert.Equal("running", (await Client.ResumeAsync(sandbox.Id)).State);
            if (cycle % 10 == 9)
            {
                var count = long.Parse(await ShAsync(sandbox.Id, "cat /tmp/c"), System.Globalization.CultureInfo.InvariantCulture);
                Assert.True(count > last, $"cycle {cycle}: the count went from {last} to {count}");
                last = count;
            }
        }
    }

    [Fact]
    public async Task IdleTimer_NeverFiresDuringACommand_ThenPauses_AndAutoResumeWakesOnExecFilesAndPorts()
    {
        await using var sandbox = await CreateAsync(new CreateSandboxRequest
        {
            Timers = new SandboxTimersInfo { IdleTimeoutSeconds = 1, OnIdle = "pause", AutoResume = true },
        });

        // A command of 4 s against an idle timer of 1 s: the sandbox is busy all along; then a stream of output that
        // stays open for 3 s, read as it comes.
        Assert.Equal("done\n", await ShAsync(sandbox.Id, "sleep 4; echo done"));
        var streamed = new System.Text.StringBuilder();
        await foreach (var e in Client.ExecStreamAsync(sandbox.Id, ExecRequestBody.FromShell("for i in 1 2 3; do echo tick$i; sleep 1; done")))
        {
            streamed.Append(e.Data);
        }

        Assert.Equal("tick1\ntick2\ntick3\n", streamed.ToString());
        Assert.DoesNotContain(await Client.GetEventsAsync(sandbox.Id), e => e.Kind == "paused");

        // The state is published as its event commits (one transaction, a moment after): wait for the event.
        await WaitForStateAsync(sandbox.Id, "paused");
        await WaitForEventAsync(sandbox.Id, e => e.Kind == "paused" && e.Message.Contains("idle", StringComparison.Ordinal));

        // Exec while paused: resumed on the way.
        Assert.Equal("awake\n", await ShAsync(sandbox.Id, "echo awake"));
        Assert.Equal("running", (await Client.GetSandboxAsync(sandbox.Id)).State);

        // A file read while stopped: started again on the way.
        await ShAsync(sandbox.Id, "echo kept > /root/f");
        await Client.SetTimersAsync(sandbox.Id, new SandboxTimersInfo { IdleTimeoutSeconds = 0 });
        await Client.StopAsync(sandbox.Id);
        await using (var file = await Client.ReadFileAsync(sandbox.Id, "/root/f"))
        using (var reader = new StreamReader(file))
        {
            Assert.Equal("kept\n", await reader.ReadToEndAsync());
        }

        Assert.Equal("running", (await Client.GetSandboxAsync(sandbox.Id)).State);

        // Port traffic while paused.
        await ShAsync(sandbox.Id, "mkdir -p /www; echo page > /www/index.html; httpd -p 8000 -h /www");
        await Client.PauseAsync(sandbox.Id);
        using var page = await fixture.Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/ports/8000/index.html");
        Assert.Equal("page\n", await page.Content.ReadAsStringAsync());
        Assert.Equal("running", (await Client.GetSandboxAsync(sandbox.Id)).State);
        Assert.Equal(3, (await Client.GetEventsAsync(sandbox.Id)).Count(e => e.Message.Contains("autoResume", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task TimeoutAction_Stop_KeepsTheFiles_AndARequestWithoutAutoResumeIsRefusedClearly()
    {
        await using var sandbox = await CreateAsync(new CreateSandboxRequest { TimeoutSeconds = 1, Timers = new SandboxTimersInfo { OnTimeout = "stop" } });
        await ShAsync(sandbox.Id, "echo kept > /root/f");
        await WaitForStateAsync(sandbox.Id, "stopped");
        var refused = await Assert.ThrowsAsync<CordonApiException>(() => Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell("true")));
        Assert.Equal(409, refused.Status);
        Assert.Contains("start it", refused.Message, StringComparison.Ordinal);
        await Client.SetTimeoutAsync(sandbox.Id, 600);
        await Client.StartAsync(sandbox.Id);
        Assert.Equal("kept\n", await ShAsync(sandbox.Id, "cat /root/f"));
    }

    [Fact]
    public async Task BadTimersAndSnapshotRequests_AreRefusedWithTheirReason()
    {
        await using var sandbox = await CreateAsync();
        using var badAction = await fixture.Server.Http.PatchAsJsonAsync($"/v1/sandboxes/{sandbox.Id}", new { onIdle = "explode" });
        await IsProblemAsync(badAction, HttpStatusCode.BadRequest, "invalid_request", "onIdle");
        using var badIdle = await fixture.Server.Http.PatchAsJsonAsync($"/v1/sandboxes/{sandbox.Id}", new { idleTimeoutSeconds = -5 });
        await IsProblemAsync(badIdle, HttpStatusCode.BadRequest, "invalid_request", "idleTimeoutSeconds");
        using var badName = await fixture.Server.Http.PostAsJsonAsync($"/v1/sandboxes/{sandbox.Id}/snapshots", new { name = "../../etc" });
        await IsProblemAsync(badName, HttpStatusCode.BadRequest, "invalid_request", "snapshot name");
        using var tooMany = await fixture.Server.Http.PostAsJsonAsync($"/v1/sandboxes/{sandbox.Id}/fork", new { count = 1000 });
        await IsProblemAsync(tooMany, HttpStatusCode.BadRequest, "invalid_request", "count");
        using var missing = await fixture.Server.Http.PostAsJsonAsync("/v1/sandboxes", new { snapshot = "no-such-snapshot" });
        await IsProblemAsync(missing, HttpStatusCode.NotFound, "snapshot_not_found", "no-such-snapshot");
    }

    /// <summary>A hostile tenant: another key's snapshots and volumes answer 404 on every route, by id and by name.</summary>
    [Fact]
    public async Task AnotherTenantsSnapshotsAndVolumes_Answer404Everywhere()
    {
        await using var sandbox = await CreateAsync();
        var snapshot = await Client.CreateSnapshotAsync(sandbox.Id, "mine-" + Guid.NewGuid().ToString("N")[..8]);
        var volume = await Client.CreateVolumeAsync("mine-" + Guid.NewGuid().ToString("N")[..8], 32);
        var (_, key) = await fixture.Server.CreateKeyAsync("intruder-" + Guid.NewGuid().ToString("N")[..6]);
        using var intruder = fixture.Server.HttpWith(key);
        foreach (var target in new[] { snapshot.Id, snapshot.Name })
        {
            using var get = await intruder.GetAsync($"/v1/snapshots/{target}");
            Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
            using var create = await intruder.PostAsJsonAsync("/v1/sandboxes", new { snapshot = target });
            Assert.Equal(HttpStatusCode.NotFound, create.StatusCode);
        }

        using (var list = await intruder.GetAsync("/v1/snapshots"))
        {
            Assert.DoesNotContain(snapshot.Id, await list.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        foreach (var target in new[] { volume.Id, volume.Name })
        {
            using var read = await intruder.GetAsync($"/v1/volumes/{target}/files?path=/");
            Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);
            using var mount = await intruder.PostAsJsonAsync("/v1/sandboxes", new { image = ServerFixture.TestImage, volumeMounts = new[] { new { name = target, path = "/v" } } });
            Assert.Equal(HttpStatusCode.NotFound, mount.StatusCode);
        }

        using (var snap = await intruder.PostAsJsonAsync($"/v1/sandboxes/{sandbox.Id}/snapshots", new { }))
        {
            Assert.Equal(HttpStatusCode.NotFound, snap.StatusCode);
        }

        using (var fork = await intruder.PostAsJsonAsync($"/v1/sandboxes/{sandbox.Id}/fork", new { count = 1 }))
        {
            Assert.Equal(HttpStatusCode.NotFound, fork.StatusCode);
        }

        using var delete = await intruder.DeleteAsync($"/v1/snapshots/{snapshot.Id}");
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode); // nothing of its own to delete
        Assert.Contains(await Client.ListSnapshotsAsync(), s => s.Id == snapshot.Id);
        await Client.DeleteSnapshotAsync(snapshot.Id);
        await Client.DeleteVolumeAsync(volume.Id);
    }

    private static async Task IsProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code, string mentioned)
    {
        var problem = await ProblemAssert.IsProblemAsync(response, status, code);
        Assert.Contains(mentioned, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private async Task WaitForEventAsync(string id, Func<SandboxEvent, bool> match)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(5); DateTime.UtcNow < deadline; await Task.Delay(20))
        {
            if ((await Client.GetEventsAsync(id)).Any(match))
            {
                return;
            }
        }

        Assert.Fail($"Sandbox {id}'s history lacks the event: {string.Join(" | ", (await Client.GetEventsAsync(id)).Select(e => e.Kind + ": " + e.Message))}");
    }

    private async Task WaitForStateAsync(string id, string state)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(20); DateTime.UtcNow < deadline; await Task.Delay(100))
        {
            if ((await Client.GetSandboxAsync(id)).State == state)
            {
                return;
            }
        }

        Assert.Fail($"Sandbox {id} did not become {state} within 20 s; it is {(await Client.GetSandboxAsync(id)).State}.");
    }
}
