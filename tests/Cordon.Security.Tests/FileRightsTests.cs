using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>The file API on behalf of a user inside the sandbox has that user's rights, no more: it cannot be
/// used to write through a link the user planted into a file only root may write, nor to read what only root may
/// read (threat model row 3).</summary>
public sealed class FileRightsTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Rest_WriteAsUserThroughLinkToPasswd_IsRefusedAndPasswdIsUnchanged()
    {
        await using var sandbox = await Server.CreateSandboxAsync();
        var before = (await sandbox.ShAsync("cat /etc/passwd")).Stdout;
        await sandbox.ExecAsync(ExecRequestBody.FromShell("ln -s /etc/passwd /home/user/n") with { User = "user" });

        using var write = await Server.Http.PutAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/home/user/n&user=user",
            new StringContent("user:x:0:0::/root:/bin/sh\n"), Token);

        await ProblemAssert.IsProblemAsync(write, HttpStatusCode.Forbidden, "permission_denied");
        Assert.Equal(before, (await sandbox.ShAsync("cat /etc/passwd")).Stdout);
        Assert.Equal("1000\n", (await sandbox.ExecAsync(ExecRequestBody.FromShell("id -u") with { User = "user" })).Stdout);
    }

    [Fact]
    public async Task Rest_ReadAndListAsUserOfRootOnlyFiles_AreRefused()
    {
        await using var sandbox = await Server.CreateSandboxAsync();
        await sandbox.ShAsync("mkdir -m 700 /vault && echo root-secret > /vault/key && echo root-secret > /etc/shadow-like && chmod 600 /etc/shadow-like");

        using var read = await Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/etc/shadow-like&user=user", Token);
        using var readInside = await Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/vault/key&user=user", Token);
        using var list = await Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/files/list?path=/vault&user=user", Token);
        using var asRoot = await Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/vault/key", Token);

        await ProblemAssert.IsProblemAsync(read, HttpStatusCode.Forbidden, "permission_denied");
        await ProblemAssert.IsProblemAsync(readInside, HttpStatusCode.Forbidden, "permission_denied");
        await ProblemAssert.IsProblemAsync(list, HttpStatusCode.Forbidden, "permission_denied");
        Assert.Equal("root-secret\n", await asRoot.Content.ReadAsStringAsync(Token)); // the sandbox's default user is root
    }

    [Fact]
    public async Task Rest_WritesAsUser_AreTheUsers()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        using var write = await Server.Http.PutAsync($"/v1/sandboxes/{sandbox.Id}/files?path=/home/user/new/dir/notes.txt&user=user", new StringContent("mine"), Token);
        var owners = await sandbox.ShAsync("stat -c '%u:%g' /home/user/new /home/user/new/dir /home/user/new/dir/notes.txt");

        Assert.Equal(HttpStatusCode.OK, write.StatusCode);
        Assert.Equal("1000:1000\n1000:1000\n1000:1000\n", owners.Stdout);
    }

    /// <summary>The review's reproduction, through E2B's envd as the SDK's <c>files.write</c> sends it.</summary>
    [Fact]
    public async Task E2bFiles_WriteAsUserThroughLinkToPasswd_IsRefused()
    {
        using var created = await Server.Http.PostAsync("/sandboxes", JsonContent.Create(new { templateID = ServerFixture.TestImage, timeout = 120 }), Token);
        var sandbox = JsonDocument.Parse(await created.Content.ReadAsStringAsync(Token)).RootElement;
        var id = sandbox.GetProperty("sandboxID").GetString()!;
        try
        {
            var before = (await Server.Client.ExecAsync(id, ExecRequestBody.FromShell("cat /etc/passwd"), Token)).Stdout;
            await Server.Client.ExecAsync(id, ExecRequestBody.FromShell("ln -s /etc/passwd /home/user/n") with { User = "user" }, Token);
            using var upload = new HttpRequestMessage(HttpMethod.Post, "/files?path=/home/user/n&username=user") { Content = new StringContent("user:x:0:0::/root:/bin/sh\n", Encoding.UTF8) };
            upload.Headers.Add("E2b-Sandbox-Id", id);
            upload.Headers.Add("X-Access-Token", sandbox.GetProperty("envdAccessToken").GetString());

            using var response = await Server.Http.SendAsync(upload, Token);

            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal(before, (await Server.Client.ExecAsync(id, ExecRequestBody.FromShell("cat /etc/passwd"), Token)).Stdout);
        }
        finally
        {
            await Server.Client.DeleteSandboxAsync(id, Token);
        }
    }
}
