using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

public sealed class FileApiTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    [Fact]
    public async Task WriteThenRead_BinaryFile_RoundTripsExactly()
    {
        await using var sandbox = await Server.CreateSandboxAsync();
        var content = RandomNumberGenerator.GetBytes(5 << 20);

        var entry = await Server.Client.WriteFileAsync(sandbox.Id, "/home/user/data/blob.bin", new MemoryStream(content));
        await using var read = await Server.Client.ReadFileAsync(sandbox.Id, "/home/user/data/blob.bin");
        var copy = new MemoryStream();
        await read.CopyToAsync(copy);

        Assert.Equal("file", entry.Type);
        Assert.Equal(content.Length, entry.Size);
        Assert.Equal(SHA256.HashData(content), SHA256.HashData(copy.ToArray()));
        var check = await sandbox.ShAsync("sha256sum /home/user/data/blob.bin | cut -d' ' -f1");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(content)) + "\n", check.Stdout);
    }

    [Fact]
    public async Task Write_WithMode_SetsPermissions()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        using var response = await Server.Http.PutAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/tmp/run.sh&mode=755", new StringContent("#!/bin/sh\necho ran\n"));
        var result = await sandbox.ShAsync("/tmp/run.sh");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ran\n", result.Stdout);
    }

    [Fact]
    public async Task List_Directory_ReportsTypesAndSizes()
    {
        await using var sandbox = await Server.CreateSandboxAsync();
        await sandbox.ShAsync("mkdir -p /w/sub && printf abc > /w/a.txt && ln -s a.txt /w/link && printf 12345 > /w/sub/b.txt");

        var listing = await Server.Client.ListFilesAsync(sandbox.Id, "/w", depth: 2);

        Assert.Equal(["/w/a.txt", "/w/link", "/w/sub", "/w/sub/b.txt"], listing.Entries.Select(e => e.Path));
        Assert.Equal(["file", "symlink", "dir", "file"], listing.Entries.Select(e => e.Type));
        Assert.Equal(3, listing.Entries[0].Size);
        Assert.Equal("a.txt", listing.Entries[1].SymlinkTarget);
    }

    [Fact]
    public async Task MkdirRenameStatRemove_Work()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        using var mkdir = await Server.Http.PostAsync($"/v1/sandboxes/{sandbox.Id}/files/mkdir?path=/data/in", null);
        await Server.Client.WriteFileAsync(sandbox.Id, "/data/in/x.txt", new MemoryStream("x"u8.ToArray()));
        using var rename = await Server.Http.PostAsJsonAsync($"/v1/sandboxes/{sandbox.Id}/files/rename", new RenameRequestBody("/data/in/x.txt", "/data/y.txt"), ApiJsonContext.Default.RenameRequestBody);
        var stat = await Server.Client.StatFileAsync(sandbox.Id, "/data/y.txt");
        using var remove = await Server.Http.DeleteAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/data");
        using var gone = await Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/files/stat?path=/data/y.txt");

        Assert.Equal(HttpStatusCode.OK, mkdir.StatusCode);
        Assert.Equal(HttpStatusCode.OK, rename.StatusCode);
        Assert.Equal(1, stat.Size);
        Assert.Equal(HttpStatusCode.NoContent, remove.StatusCode);
        await ProblemAssert.IsProblemAsync(gone, HttpStatusCode.NotFound, "file_not_found");
    }

    [Theory]
    [InlineData("/tmp/../etc/passwd")]
    [InlineData("etc/passwd")]
    [InlineData("")]
    public async Task Read_UnsafePath_BadRequest(string path)
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        using var response = await Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/files?path={Uri.EscapeDataString(path)}");

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Read_Missing_NotFound()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        using var response = await Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/nope.txt");

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.NotFound, "file_not_found");
    }

    [Fact]
    public async Task Read_Directory_BadRequestSayingList()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        using var response = await Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/etc");

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("directory", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Write_BeyondDiskLimit_InsufficientStorageAndOldFileKept()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { DiskMiB = 16 });
        await Server.Client.WriteFileAsync(sandbox.Id, "/keep.txt", new MemoryStream("original"u8.ToArray()));

        using var response = await Server.Http.PutAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/keep.txt", new ByteArrayContent(new byte[32 << 20]));
        var kept = await sandbox.ShAsync("cat /keep.txt; ls -a / | grep -c cordon- || true");

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.InsufficientStorage, "disk_full");
        Assert.Equal("original0\n", kept.Stdout);
    }

    [Fact]
    public void Protocol_PathRules_SharedWithServer()
        => Assert.NotNull(SandboxPaths.Validate("/a/../b"));
}
