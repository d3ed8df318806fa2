using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>Warm pools on a server of their own (its pool of the test image starts from the settings): a create
/// asking for the defaults takes a started sandbox, with its own environment, metadata and timeout, and nobody ever
/// sees the pool's sandboxes.</summary>
public sealed class WarmPoolTests : IAsyncLifetime
{
    private ServerFixture? _server;

    private ServerFixture Server => _server!;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
        => _server = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?> { [$"Cordon:WarmPools:{ServerFixture.TestImage}"] = "2" });

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();

    [Fact]
    public async Task ACreate_TakesAStartedSandbox_WithItsOwnSettings_AndThePoolRefills()
    {
        await SetSizeAsync(2);
        var before = await ReadyAsync(2);
        var (_, secret) = await Server.CreateKeyAsync("pool-" + Guid.NewGuid().ToString("N")[..6]);
        var (_, otherSecret) = await Server.CreateKeyAsync("pool-other-" + Guid.NewGuid().ToString("N")[..6]);
        using var tenant = Server.HttpWith(secret);
        using var other = Server.HttpWith(otherSecret);

        using var created = await tenant.PostAsJsonAsync("/v1/sandboxes", new
        {
            image = ServerFixture.TestImage,
            env = new Dictionary<string, string> { ["GREETING"] = "hello from the pool" },
            metadata = new Dictionary<string, string> { ["task"] = "t1" },
            timeoutSeconds = 120,
        }, Token);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var sandbox = await created.Content.ReadFromJsonAsync<JsonElement>(Token);
        var id = sandbox.GetProperty("id").GetString()!;
        var after = Pool(await PoolsAsync());
        var echoed = await ExecAsync(tenant, id, "echo $GREETING");
        var events = await tenant.GetStringAsync($"/v1/sandboxes/{id}/events", Token);
        using var asOther = await other.GetAsync($"/v1/sandboxes/{id}", Token);
        var listed = await Server.Client.ListSandboxesAsync(cancellationToken: Token);
        var refilled = await ReadyAsync(2);

        Assert.Equal(before.GetProperty("claims").GetInt64() + 1, after.GetProperty("claims").GetInt64());
        Assert.Equal("hello from the pool\n", echoed);
        Assert.Equal("t1", sandbox.GetProperty("metadata").GetProperty("task").GetString());
        Assert.InRange((sandbox.GetProperty("expiresAt").GetDateTimeOffset() - DateTimeOffset.UtcNow).TotalSeconds, 60, 121);
        Assert.Contains("Taken from the warm pool", events, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, asOther.StatusCode);
        Assert.Equal([id], listed.Select(s => s.Id)); // the admin sees the claimed sandbox, never the pool's
        Assert.Equal(2, refilled.GetProperty("ready").GetInt32());
    }

    [Fact]
    public async Task ACreate_AskingForMore_IsACold_Create()
    {
        await SetSizeAsync(2);
        var before = await ReadyAsync(2);

        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { MemoryMiB = 256 });
        var events = await Server.Http.GetStringAsync($"/v1/sandboxes/{sandbox.Id}/events", Token);
        var after = Pool(await PoolsAsync());

        Assert.Contains("Started from image", events, StringComparison.Ordinal);
        Assert.Equal(before.GetProperty("claims").GetInt64(), after.GetProperty("claims").GetInt64());
        Assert.Equal(256L << 20, (await Server.Client.GetMetricsAsync(sandbox.Id, Token)).MemoryLimitBytes);
    }

    [Fact]
    public async Task Pools_AreSetByAdminsOnly_AndEndAtZero()
    {
        var (_, secret) = await Server.CreateKeyAsync("pool-tenant-" + Guid.NewGuid().ToString("N")[..6]);
        using var tenant = Server.HttpWith(secret);

        using var byTenant = await tenant.PutAsJsonAsync($"/v1/pools/{ServerFixture.TestImage}", new { size = 5 }, Token);
        using var tooMany = await Server.Http.PutAsJsonAsync($"/v1/pools/{ServerFixture.TestImage}", new { size = 65 }, Token);
        using var noImage = await Server.Http.PutAsJsonAsync("/v1/pools/no-such-image", new { size = 1 }, Token);
        using var listedByTenant = await tenant.GetAsync("/v1/pools", Token);
        await SetSizeAsync(0);
        var empty = await ReadyAsync(0);
        await using var cold = await Server.CreateSandboxAsync();
        var events = await Server.Http.GetStringAsync($"/v1/sandboxes/{cold.Id}/events", Token);
        var missed = Pool(await PoolsAsync());

        await ProblemAssert.IsProblemAsync(byTenant, HttpStatusCode.Forbidden, "admin_required");
        await ProblemAssert.IsProblemAsync(tooMany, HttpStatusCode.BadRequest);
        Assert.Equal(HttpStatusCode.NotFound, noImage.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, listedByTenant.StatusCode);
        Assert.Equal(0, empty.GetProperty("size").GetInt32());
        Assert.Contains("Started from image", events, StringComparison.Ordinal);
        Assert.Equal(empty.GetProperty("misses").GetInt64() + 1, missed.GetProperty("misses").GetInt64());
    }

    [Fact]
    public async Task TheCliAndTheSdk_ListAndSizePools()
    {
        var (setExit, set, setError) = await CordonAsync("pool", "set", ServerFixture.TestImage, "3");
        var viaSdk = await Server.Client.SetPoolAsync(ServerFixture.TestImage, 1, Token);
        await ReadyAsync(1);
        var (lsExit, ls, _) = await CordonAsync("pool", "ls");
        var listed = await Server.Client.ListPoolsAsync(Token);

        Assert.True(setExit == 0, setError);
        Assert.StartsWith($"{ServerFixture.TestImage}: 3 kept", set, StringComparison.Ordinal);
        Assert.Equal(1, viaSdk.Size);
        Assert.Equal(0, lsExit);
        Assert.Matches($@"(?m)^{ServerFixture.TestImage}\s+1\s+1\s", ls);
        Assert.Equal(1, listed.Single(p => p.Image == ServerFixture.TestImage).Ready);
    }

    private async Task<(int ExitCode, string Stdout, string Stderr)> CordonAsync(params string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo(TestPaths.CliPath) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.Environment["CORDON_URL"] = Server.Address.ToString().TrimEnd('/');
        info.Environment["CORDON_API_KEY"] = ServerFixture.AdminKey;
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = System.Diagnostics.Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Token);
        var stderr = process.StandardError.ReadToEndAsync(Token);
        await process.WaitForExitAsync(Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    private async Task SetSizeAsync(int size)
    {
        using var response = await Server.Http.PutAsJsonAsync($"/v1/pools/{ServerFixture.TestImage}", new { size }, Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private async Task<JsonElement> PoolsAsync() => await Server.Http.GetFromJsonAsync<JsonElement>("/v1/pools", Token);

    private static JsonElement Pool(JsonElement pools) => pools.EnumerateArray().Single(p => p.GetProperty("image").GetString() == ServerFixture.TestImage);

    /// <summary>The test image's pool once it has <paramref name="ready"/> sandboxes ready (each is started, its
    /// Python context too, in the background): bounded, never a timing assertion.</summary>
    private async Task<JsonElement> ReadyAsync(int ready)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Token);
        limit.CancelAfter(TimeSpan.FromSeconds(120));
        while (true)
        {
            var pool = Pool(await PoolsAsync());
            if (pool.GetProperty("ready").GetInt32() == ready)
            {
                return pool;
            }

            await Task.Delay(100, limit.Token);
        }
    }

    private static async Task<string> ExecAsync(HttpClient http, string id, string shell)
    {
        using var response = await http.PostAsJsonAsync($"/v1/sandboxes/{id}/exec", new { cmd = shell }, Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Token)).GetProperty("stdout").GetString()!;
    }
}
