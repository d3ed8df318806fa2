using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Cordon.Testing;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>Finding 10: one key cannot take what the host has. Each tenant key holds at most its quotas (sandboxes,
/// CPU, memory, disk promised, background commands, request rate) and is told so with a 429 that says what to do;
/// a create whose disk the host cannot promise is a 507 (threat model row 31).</summary>
public sealed class QuotaTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TenantKey_BeyondItsSandboxAndMemoryQuotas_Gets429_UntilTheOperatorRaisesThem()
    {
        var (keyId, secret) = await CreateKeyAsync("quota-tenant", new { sandboxes = 2, memoryMiB = 1024 });
        using var tenant = Server.HttpWith(secret);
        var created = new List<string>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                created.Add(await CreateAsync(tenant, new { image = ServerFixture.TestImage, memoryMiB = 256 }));
            }

            using var third = await tenant.PostAsJsonAsync("/v1/sandboxes", new { image = ServerFixture.TestImage, memoryMiB = 256 }, Token);
            var refused = await ProblemAssert.IsProblemAsync(third, HttpStatusCode.TooManyRequests, "quota_exceeded");
            var quotas = await tenant.GetFromJsonAsync<JsonElement>("/v1/quotas", Token);

            Assert.Contains("2 sandboxes", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Equal(2, quotas.GetProperty("quotas").GetProperty("sandboxes").GetInt32());
            Assert.Equal(2, quotas.GetProperty("held").GetProperty("sandboxes").GetInt32());
            Assert.Equal(512, quotas.GetProperty("held").GetProperty("memoryMiB").GetInt64());

            using var raised = await Server.Http.PutAsJsonAsync($"/v1/keys/{keyId}/quotas", new { sandboxes = 3, memoryMiB = 1024 }, Token);
            raised.EnsureSuccessStatusCode();
            created.Add(await CreateAsync(tenant, new { image = ServerFixture.TestImage, memoryMiB = 256 }));
            using var tooMuchMemory = await tenant.PostAsJsonAsync("/v1/sandboxes", new { image = ServerFixture.TestImage, memoryMiB = 512 }, Token);
            await ProblemAssert.IsProblemAsync(tooMuchMemory, HttpStatusCode.TooManyRequests, "quota_exceeded");
        }
        finally
        {
            foreach (var id in created)
            {
                await tenant.DeleteAsync($"/v1/sandboxes/{id}", Token);
            }
        }
    }

    [Fact]
    public async Task TenantKey_BeyondItsBackgroundCommands_IsRefused_AndGetsItsSlotBackWhenOneEnds()
    {
        var (_, secret) = await CreateKeyAsync("background-tenant", new { backgroundCommands = 2 });
        using var tenant = Server.HttpWith(secret);
        var id = await CreateAsync(tenant, new { image = ServerFixture.TestImage });
        try
        {
            await using var mcp = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = new Uri(Server.Address, "/mcp"),
                AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + secret },
            }), cancellationToken: Token);
            Task<CallToolResult> StartAsync(string command) => mcp.CallToolAsync("run_command", new Dictionary<string, object?> { ["command"] = command, ["background"] = true, ["sandboxId"] = id }, cancellationToken: Token).AsTask();

            var first = await StartAsync("sleep 300");
            var second = await StartAsync("sleep 1");
            var third = await StartAsync("sleep 300");
            await mcp.CallToolAsync("wait_command", new Dictionary<string, object?> { ["handle"] = second.StructuredContent!.Value.GetProperty("handle").GetString(), ["timeoutSeconds"] = 30 }, cancellationToken: Token);
            var fourth = await StartAsync("sleep 300");

            Assert.NotEqual(true, first.IsError);
            Assert.True(third.IsError);
            Assert.Contains("2 background commands", string.Concat(third.Content.OfType<TextContentBlock>().Select(t => t.Text)), StringComparison.Ordinal);
            Assert.NotEqual(true, fourth.IsError);
        }
        finally
        {
            await tenant.DeleteAsync($"/v1/sandboxes/{id}", Token);
        }
    }

    [Fact]
    public async Task TenantKey_FloodingRequests_Gets429WithRetryAfter_AdminDoesNot()
    {
        var (_, secret) = await CreateKeyAsync("flooding-tenant", new { requestsPerSecond = 2 });
        using var tenant = Server.HttpWith(secret);
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 40; i++)
        {
            var response = await tenant.GetAsync("/v1/quotas", Token);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests && limited is null)
            {
                limited = response;
                continue;
            }

            response.Dispose();
        }

        for (var i = 0; i < 40; i++)
        {
            using var admin = await Server.Http.GetAsync("/v1/quotas", Token);
            Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        }

        Assert.True(statuses.Count(s => s == HttpStatusCode.OK) >= 20, string.Join(",", statuses)); // the burst passes
        Assert.NotNull(limited);
        Assert.True(limited.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        await ProblemAssert.IsProblemAsync(limited, HttpStatusCode.TooManyRequests, "quota_exceeded");
        limited.Dispose();
    }

    /// <summary>Promised disk must fit in what the host has free beyond its reserve: a server whose reserve leaves
    /// ~1 GiB refuses a 2 GiB sandbox with 507 and takes a 512 MiB one.</summary>
    [Fact]
    public async Task Create_WhoseDiskTheHostCannotPromise_Is507()
    {
        var dataDir = TestPaths.NewTempDirectory("disk-reserve");
        var free = new DriveInfo(dataDir).AvailableFreeSpace >> 20;
        await using var server = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?> { ["Cordon:DiskReserveMiB"] = (free - 1024).ToString(System.Globalization.CultureInfo.InvariantCulture) }, dataDir: dataDir);

        using var big = await server.Http.PostAsJsonAsync("/v1/sandboxes", new { image = ServerFixture.TestImage, diskMiB = 2048 }, Token);
        await ProblemAssert.IsProblemAsync(big, HttpStatusCode.InsufficientStorage, "host_disk_full");
        using var small = await server.Http.PostAsJsonAsync("/v1/sandboxes", new { image = ServerFixture.TestImage, diskMiB = 512 }, Token);
        Assert.Equal(HttpStatusCode.Created, small.StatusCode);
    }

    [Fact]
    public async Task KeyQuotas_OutOfRange_Are400()
    {
        using var response = await Server.Http.PostAsJsonAsync("/v1/keys", new { name = "bad-quota", quotas = new { sandboxes = -1 } }, Token);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest, "invalid_request");
    }

    private async Task<(string Id, string Secret)> CreateKeyAsync(string name, object quotas)
    {
        using var created = await Server.Http.PostAsJsonAsync("/v1/keys", new { name, quotas }, Token);
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync(Token));
        var key = await created.Content.ReadFromJsonAsync<JsonElement>(Token);
        return (key.GetProperty("id").GetString()!, key.GetProperty("key").GetString()!);
    }

    private static async Task<string> CreateAsync(HttpClient http, object body)
    {
        using var response = await http.PostAsJsonAsync("/v1/sandboxes", body, Token);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Token));
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Token)).GetProperty("id").GetString()!;
    }
}
