using System.Net;
using System.Net.Http.Json;
using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>Volumes as a tenant meets them: shared between sandboxes with different id ranges, outliving them,
/// size-limited, readable without a sandbox, and never a way for a sandbox to reach the host's files.</summary>
public sealed class VolumeTests(ServerAssemblyFixture fixture)
{
    private CordonClient Client => fixture.Server.Client;

    private static string NewName() => "vol-" + Guid.NewGuid().ToString("N")[..10];

    private async Task<string> ShAsync(string id, string command, int exit = 0)
    {
        var result = await Client.ExecAsync(id, ExecRequestBody.FromShell(command));
        Assert.True(result.ExitCode == exit, $"'{command}' exited {result.ExitCode}: {result.Stdout}{result.Stderr}");
        return result.Stdout + result.Stderr;
    }

    [Fact]
    public async Task Volume_WrittenByOneSandbox_IsReadByAnother_AndOutlivesBoth()
    {
        var name = NewName();
        await Client.CreateVolumeAsync(name, 64);
        var writer = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { VolumeMounts = [new VolumeMountInfo { Name = name, Path = "/data" }] });
        await ShAsync(writer.Id, "echo shared > /data/note; mkdir /data/dir; echo deep > /data/dir/f; chown 1000:1000 /data/dir/f");

        var reader = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { VolumeMounts = [new VolumeMountInfo { Name = name, Path = "/mnt/in", ReadOnly = true }] });
        Assert.Equal("shared\ndeep\n1000:1000\n", await ShAsync(reader.Id, "cat /mnt/in/note /mnt/in/dir/f; stat -c %u:%g /mnt/in/dir/f"));
        Assert.Contains("Read-only", await ShAsync(reader.Id, "echo x > /mnt/in/x", exit: 1), StringComparison.Ordinal);

        // Deleting a mounted volume is refused; both sandboxes gone, its files remain for the next one and the file API.
        var refused = await Assert.ThrowsAsync<CordonApiException>(() => Client.DeleteVolumeAsync(name));
        Assert.Equal("volume_in_use", refused.Code);
        await writer.DisposeAsync();
        await reader.DisposeAsync();

        await using (var file = await Client.ReadVolumeFileAsync(name, "/dir/f"))
        using (var text = new StreamReader(file))
        {
            Assert.Equal("deep\n", await text.ReadToEndAsync());
        }

        var listing = await Client.ListVolumeFilesAsync(name, "/", depth: 2);
        Assert.Equal(["/dir", "/dir/f", "/note"], listing.Select(e => e.Path).ToArray());
        Assert.Equal(1000u, listing.Single(e => e.Path == "/dir/f").Uid);

        await using var later = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { VolumeMounts = [new VolumeMountInfo { Name = name, Path = "/data" }] });
        Assert.Equal("shared\n", await ShAsync(later.Id, "cat /data/note"));
        await later.DisposeAsync();
        await Client.DeleteVolumeAsync(name);
        Assert.DoesNotContain(await Client.ListVolumesAsync(), v => v.Name == name);
    }

    [Fact]
    public async Task Volume_IsSizeLimited_AndASandboxFillingItHarmsNoOtherVolume()
    {
        var name = NewName();
        await Client.CreateVolumeAsync(name, 32);
        await using var sandbox = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { VolumeMounts = [new VolumeMountInfo { Name = name, Path = "/v" }] });
        var full = await ShAsync(sandbox.Id, "dd if=/dev/zero of=/v/big bs=1M count=64 2>&1; echo after", exit: 0);
        Assert.Contains("No space left", full, StringComparison.Ordinal);
        using var write = await fixture.Server.Http.PutAsync($"/v1/volumes/{name}/files?path=/more", new ByteArrayContent(new byte[1 << 20]));
        await ProblemAssert.IsProblemAsync(write, HttpStatusCode.InsufficientStorage, "disk_full");
        await sandbox.DisposeAsync();
        await Client.DeleteVolumeAsync(name);
    }

    /// <summary>A sandbox plants symlinks to the host's files and out of the volume; the server's file API resolves
    /// them inside the volume (where nothing is), never on the host.</summary>
    [Fact]
    public async Task FileApi_NeverFollowsASandboxsSymlinkOutOfTheVolume()
    {
        var name = NewName();
        await Client.CreateVolumeAsync(name, 32);
        await using (var sandbox = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { VolumeMounts = [new VolumeMountInfo { Name = name, Path = "/v" }] }))
        {
            await ShAsync(sandbox.Id, "ln -s /etc/shadow /v/shadow; ln -s ../../../../../../etc /v/up; ln -s /proc/self/root /v/root; mkdir /v/d; ln -s / /v/d/top");
        }

        foreach (var path in new[] { "/shadow", "/up/passwd", "/root/etc/passwd", "/d/top/etc/passwd", "/../../../etc/passwd" })
        {
            using var read = await fixture.Server.Http.GetAsync($"/v1/volumes/{name}/files?path={Uri.EscapeDataString(path)}");
            Assert.True(read.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest, $"{path}: {(int)read.StatusCode} {await read.Content.ReadAsStringAsync()}");
        }

        // Writing through a planted symlink lands inside the volume.
        using (var write = await fixture.Server.Http.PutAsync($"/v1/volumes/{name}/files?path={Uri.EscapeDataString("/d/top/tmp/planted")}", new StringContent("x")))
        {
            Assert.Equal(HttpStatusCode.OK, write.StatusCode);
        }

        Assert.False(File.Exists("/tmp/planted"));
        await using (var check = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { VolumeMounts = [new VolumeMountInfo { Name = name, Path = "/v" }] }))
        {
            Assert.Equal("x", await ShAsync(check.Id, "cat /v/tmp/planted"));
        }

        await Client.DeleteVolumeAsync(name);
    }

    [Fact]
    public async Task BadVolumeRequests_AreRefusedWithTheirReason()
    {
        using var badName = await fixture.Server.Http.PostAsJsonAsync("/v1/volumes", new { name = "../x" });
        await ProblemAssert.IsProblemAsync(badName, HttpStatusCode.BadRequest, "invalid_request");
        using var huge = await fixture.Server.Http.PostAsJsonAsync("/v1/volumes", new { name = NewName(), sizeMiB = long.MaxValue / 2 });
        await ProblemAssert.IsProblemAsync(huge, HttpStatusCode.BadRequest, "invalid_request");
        var name = NewName();
        await Client.CreateVolumeAsync(name, 16);
        using var again = await fixture.Server.Http.PostAsJsonAsync("/v1/volumes", new { name });
        await ProblemAssert.IsProblemAsync(again, HttpStatusCode.Conflict, "already_exists");
        foreach (var path in new[] { "relative", "/proc/x", "/", "/a/../b", "/dev" })
        {
            using var mount = await fixture.Server.Http.PostAsJsonAsync("/v1/sandboxes", new { image = ServerFixture.TestImage, volumeMounts = new[] { new { name, path } } });
            await ProblemAssert.IsProblemAsync(mount, HttpStatusCode.BadRequest, "invalid_request");
        }

        await Client.DeleteVolumeAsync(name);
    }
}
