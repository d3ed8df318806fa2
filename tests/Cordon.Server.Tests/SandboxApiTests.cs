using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

public sealed class SandboxApiTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    [Fact]
    public async Task Health_WithoutKey_ReportsRuntimeAndHost()
    {
        using var http = new HttpClient { BaseAddress = Server.Address };

        var health = await http.GetFromJsonAsync<HealthReport>("/health", ApiJsonContext.Default.Options);

        Assert.Equal("ok", health!.Status);
        var runtime = Assert.Single(health.Runtimes);
        Assert.Equal("crun", runtime.Name);
        Assert.True(runtime.Available);
        Assert.True(runtime.Seccomp);
        Assert.True(runtime.IdmappedMounts);
        Assert.Contains(runtime.Cgroups, new[] { "v1", "v2", "hybrid" });
    }

    [Fact]
    public async Task Create_Defaults_RunningWithDefaultLimits()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { TimeoutSeconds = 120, Metadata = new Dictionary<string, string> { ["owner"] = "test" } });

        var info = await Server.Client.GetSandboxAsync(sandbox.Id);

        Assert.Equal("running", info.State);
        Assert.Matches("^[a-z0-9]{20}$", info.Id);
        Assert.Equal(1, info.Cpu);
        Assert.Equal(512, info.MemoryMiB);
        Assert.Equal(2048, info.DiskMiB);
        Assert.Equal(256, info.MaxProcesses);
        Assert.Equal("test", info.Metadata["owner"]);
        Assert.InRange(info.ExpiresAt!.Value - info.CreatedAt, TimeSpan.FromSeconds(119), TimeSpan.FromSeconds(125));
    }

    [Fact]
    public async Task Create_RawPost_Returns201WithLocation()
    {
        using var response = await Server.Http.PostAsync("/v1/sandboxes", new StringContent("{\"image\":\"busybox\",\"timeoutSeconds\":60}", Encoding.UTF8, "application/json"));
        var info = await response.Content.ReadFromJsonAsync(ApiJsonContext.Default.SandboxInfo);
        await using var _ = new TestSandbox(Server.Client, info!);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal($"/v1/sandboxes/{info!.Id}", response.Headers.Location?.ToString());
    }

    [Fact]
    public async Task Create_UnknownImage_NotFoundWithAdvice()
    {
        using var response = await Server.Http.PostAsJsonAsync("/v1/sandboxes", new CreateSandboxRequest { Image = "no-such-image" }, ApiJsonContext.Default.CreateSandboxRequest);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.NotFound, "image_not_found");
        Assert.Contains("GET /v1/images", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"cpu\":1000}", "cpu")]
    [InlineData("{\"cpu\":-1}", "cpu")]
    [InlineData("{\"memoryMiB\":1}", "memoryMiB")]
    [InlineData("{\"memoryMiB\":99999999999}", "memoryMiB")]
    [InlineData("{\"timeoutSeconds\":0}", "timeoutSeconds")]
    [InlineData("{\"maxProcesses\":1}", "maxProcesses")]
    [InlineData("{\"diskMiB\":1}", "diskMiB")]
    [InlineData("{\"env\":{\"1BAD\":\"x\"}}", "env")]
    [InlineData("{\"env\":{\"CORDON_AGENT_SOCKET\":\"/x\"}}", "reserved")]
    [InlineData("{\"image\":\"../../etc\"}", "image name")]
    [InlineData("{\"cpu\":\"lots\"}", "cpu")]
    public async Task Create_AbsurdOrMalformedField_BadRequestNamingIt(string body, string mentioned)
    {
        using var response = await Server.Http.PostAsync("/v1/sandboxes", new StringContent(body, Encoding.UTF8, "application/json"));

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains(mentioned, problem.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Create_MalformedJson_BadRequest()
    {
        using var response = await Server.Http.PostAsync("/v1/sandboxes", new StringContent("{\"image\": ", Encoding.UTF8, "application/json"));

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Create_HugeBody_PayloadTooLarge()
    {
        var huge = "{\"metadata\":{\"k\":\"" + new string('x', 8 << 20) + "\"}}";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/sandboxes") { Content = new StringContent(huge, Encoding.UTF8, "application/json") };

        // As curl does for large bodies: the server can refuse before the body is sent.
        request.Headers.ExpectContinue = true;
        using var response = await Server.Http.SendAsync(request);

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, "body_too_large");
    }

    /// <summary>A body of the wrong shape says where, and where the fields' types are described: never the server's
    /// type names, which tell an agent nothing it can send.</summary>
    [Theory]
    [InlineData("{\"network\":\"none\"}", "$.network")]
    [InlineData("{\"timeoutSeconds\":\"ten\"}", "$.timeoutSeconds")]
    [InlineData("{\"env\":[\"A=1\"]}", "$.env")]
    [InlineData("{\"metadata\":{\"k\":1}}", "$.metadata.k")]
    [InlineData("{\"image\":", "$.image")]
    public async Task Create_BodyOfTheWrongShape_SaysWhere_WithoutTheServersTypeNames(string body, string path)
    {
        using var response = await Server.Http.PostAsync("/v1/sandboxes", new StringContent(body, Encoding.UTF8, "application/json"));

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.BadRequest);
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains(path, detail);
        Assert.DoesNotContain("Cordon.", detail);
        Assert.DoesNotContain("System.", detail);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer wrong-key")]
    [InlineData("Basic dXNlcjpwYXNz")]
    public async Task Request_WithoutValidKey_Unauthorized(string? authorization)
    {
        using var http = new HttpClient { BaseAddress = Server.Address };
        if (authorization is not null)
        {
            http.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", authorization);
        }

        using var response = await http.GetAsync("/v1/sandboxes");

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Fact]
    public async Task Get_UnknownId_NotFound()
    {
        using var response = await Server.Http.GetAsync("/v1/sandboxes/aaaaaaaaaaaaaaaaaaaa");

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.NotFound, "sandbox_not_found");
    }

    [Fact]
    public async Task Delete_Twice_NoContentThenEndedInHistory()
    {
        var sandbox = await Server.CreateSandboxAsync();

        using var first = await Server.Http.DeleteAsync($"/v1/sandboxes/{sandbox.Id}");
        using var second = await Server.Http.DeleteAsync($"/v1/sandboxes/{sandbox.Id}");

        Assert.Equal(HttpStatusCode.NoContent, first.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, second.StatusCode);
        var info = await Server.Client.GetSandboxAsync(sandbox.Id);
        Assert.Equal("ended", info.State);
        Assert.Equal("deleted", info.EndReason);
        Assert.DoesNotContain(await Server.Client.ListSandboxesAsync(), s => s.Id == sandbox.Id);
        Assert.Contains(await Server.Client.ListSandboxesAsync(includeEnded: true), s => s.Id == sandbox.Id);
    }

    [Fact]
    public async Task Exec_OnEndedSandbox_GoneWithAdvice()
    {
        var sandbox = await Server.CreateSandboxAsync();
        await Server.Client.DeleteSandboxAsync(sandbox.Id);

        using var response = await Server.Http.PostAsJsonAsync($"/v1/sandboxes/{sandbox.Id}/exec", ExecRequestBody.FromShell("true"), ApiJsonContext.Default.ExecRequestBody);

        var problem = await ProblemAssert.IsProblemAsync(response, HttpStatusCode.Gone, "sandbox_ended");
        Assert.Contains("create a new one", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Timeout_Passes_SandboxDestroyedAndHistorySaysWhy()
    {
        var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { TimeoutSeconds = 1 });

        var info = await WaitForStateAsync(sandbox.Id, "ended", TimeSpan.FromSeconds(30));

        Assert.Equal("expired", info.EndReason);
        var events = await Server.Client.GetEventsAsync(sandbox.Id);
        Assert.Contains(events, e => e.Kind == "expired" && e.Message.Contains("timeout", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SetTimeout_Running_ExtendsExpiry()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { TimeoutSeconds = 30 });

        var info = await Server.Client.SetTimeoutAsync(sandbox.Id, 3600);

        Assert.InRange(info.ExpiresAt!.Value - DateTimeOffset.UtcNow, TimeSpan.FromSeconds(3500), TimeSpan.FromSeconds(3601));
    }

    [Fact]
    public async Task PauseResume_Api_FreezesAndContinues()
    {
        await using var sandbox = await Server.CreateSandboxAsync();

        var paused = await Server.Client.PauseAsync(sandbox.Id);
        using var whilePaused = await Server.Http.PostAsJsonAsync($"/v1/sandboxes/{sandbox.Id}/exec", ExecRequestBody.FromShell("true"), ApiJsonContext.Default.ExecRequestBody);
        var resumed = await Server.Client.ResumeAsync(sandbox.Id);
        var result = await sandbox.ShAsync("echo back");

        Assert.Equal("paused", paused.State);
        Assert.Null(paused.ExpiresAt);
        await ProblemAssert.IsProblemAsync(whilePaused, HttpStatusCode.Conflict, "sandbox_paused");
        Assert.Equal("running", resumed.State);
        Assert.Equal("back\n", result.Stdout);
    }

    [Fact]
    public async Task Delete_PausedSandbox_EndsIt()
    {
        await using var sandbox = await Server.CreateSandboxAsync();
        await Server.Client.PauseAsync(sandbox.Id);

        using var deleted = await Server.Http.DeleteAsync($"/v1/sandboxes/{sandbox.Id}");
        var info = await Server.Client.GetSandboxAsync(sandbox.Id);

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal("ended", info.State);
    }

    [Fact]
    public async Task List_MetadataFilter_SelectsMatching()
    {
        var tag = Guid.NewGuid().ToString("N");
        await using var a = await Server.CreateSandboxAsync(new CreateSandboxRequest { Metadata = new Dictionary<string, string> { ["run"] = tag } });
        await using var b = await Server.CreateSandboxAsync();

        var listed = await Server.Http.GetFromJsonAsync($"/v1/sandboxes?metadata=run={tag}", ApiJsonContext.Default.ListSandboxInfo);

        Assert.Equal(a.Id, Assert.Single(listed!).Id);
    }

    [Fact]
    public async Task Metrics_RunningSandbox_ReportsMemoryLimit()
    {
        await using var sandbox = await Server.CreateSandboxAsync(new CreateSandboxRequest { MemoryMiB = 128 });

        var metrics = await Server.Http.GetFromJsonAsync($"/v1/sandboxes/{sandbox.Id}/metrics", ApiJsonContext.Default.SandboxMetrics);

        Assert.Equal(128L << 20, metrics!.MemoryLimitBytes);
        Assert.True(metrics.Processes >= 1);
    }

    [Fact]
    public async Task Tenants_SeeOnlyTheirOwnSandboxes()
    {
        using var created = await Server.Http.PostAsJsonAsync("/v1/keys", new { name = "tenant-a" });
        var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
        using var tenant = new CordonClient(Server.Address, key);
        await using var adminSandbox = await Server.CreateSandboxAsync();
        var tenantSandbox = await tenant.CreateSandboxAsync(new CreateSandboxRequest { Image = ServerFixture.TestImage });
        try
        {
            var visible = await tenant.ListSandboxesAsync();
            var hidden = await Assert.ThrowsAsync<CordonApiException>(() => tenant.GetSandboxAsync(adminSandbox.Id));
            var noExec = await Assert.ThrowsAsync<CordonApiException>(() => tenant.ExecAsync(adminSandbox.Id, ExecRequestBody.FromShell("true")));
            var noDelete = await Assert.ThrowsAsync<CordonApiException>(() => tenant.DeleteImageAsync(ServerFixture.TestImage)); // the server's image

            Assert.Equal(tenantSandbox.Id, Assert.Single(visible).Id);
            Assert.Equal(404, hidden.Status);
            Assert.Equal(404, noExec.Status);
            Assert.Equal(403, noDelete.Status);
            Assert.Equal(tenantSandbox.Id, (await Server.Client.GetSandboxAsync(tenantSandbox.Id)).Id);
        }
        finally
        {
            await tenant.DeleteSandboxAsync(tenantSandbox.Id);
        }
    }

    [Fact]
    public async Task UnknownRoute_ProblemDetails()
    {
        using var response = await Server.Http.GetAsync("/v1/nothing-here");

        await ProblemAssert.IsProblemAsync(response, HttpStatusCode.NotFound);
    }

    private async Task<SandboxInfo> WaitForStateAsync(string id, string state, TimeSpan limit)
    {
        using var timeout = new CancellationTokenSource(limit);
        while (true)
        {
            var info = await Server.Client.GetSandboxAsync(id, timeout.Token);
            if (info.State == state)
            {
                return info;
            }

            // The expiry runs once a second; polling its visible result is the event we wait on.
            await Task.Delay(200, timeout.Token);
        }
    }
}
