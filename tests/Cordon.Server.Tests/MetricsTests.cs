using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>/metrics in Prometheus' text format, as Prometheus scrapes it: admin keys only, counters that move with
/// what happens, gauges that say what exists now. (Other tests share the server: counts are compared, not fixed.)</summary>
public sealed class MetricsTests(ServerAssemblyFixture fixture)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Metrics_CountCreatesAndExecs_AndShowEachTenantsSandboxes()
    {
        var (keyId, secret) = await fixture.Server.CreateKeyAsync("metrics-" + Guid.NewGuid().ToString("N")[..6]);
        using var tenant = fixture.Server.HttpWith(secret);
        var before = await ScrapeAsync();

        using var created = await tenant.PostAsJsonAsync("/v1/sandboxes", new { image = ServerFixture.TestImage, memoryMiB = 64 }, Token);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(Token)).GetProperty("id").GetString();
        using var exec = await tenant.PostAsJsonAsync($"/v1/sandboxes/{id}/exec", new { cmd = "echo hi" }, Token);
        Assert.Equal(HttpStatusCode.OK, exec.StatusCode);
        var during = await ScrapeAsync();
        using var deleted = await tenant.DeleteAsync($"/v1/sandboxes/{id}", Token);
        var after = await ScrapeAsync();

        Assert.True(Value(during, "cordon_sandbox_creates_total", "outcome=\"created\"", "source=\"image\"", $"image=\"{ServerFixture.TestImage}\"") > Value(before, "cordon_sandbox_creates_total", "outcome=\"created\"", "source=\"image\"", $"image=\"{ServerFixture.TestImage}\""));
        Assert.True(Value(during, "cordon_sandbox_create_duration_seconds_count", "source=\"image\"") > Value(before, "cordon_sandbox_create_duration_seconds_count", "source=\"image\""));
        Assert.True(Value(during, "cordon_exec_duration_seconds_count") > Value(before, "cordon_exec_duration_seconds_count"));
        Assert.Equal(1, Value(during, "cordon_tenant_sandboxes", $"key=\"{keyId}\""));
        Assert.Equal(64L << 20, Value(during, "cordon_tenant_memory_bytes", $"key=\"{keyId}\""));
        Assert.Null(Find(after, "cordon_tenant_sandboxes", $"key=\"{keyId}\"")); // nothing held, nothing shown
        Assert.True(Value(after, "cordon_sandbox_ends_total", "reason=\"deleted\"") > Value(during, "cordon_sandbox_ends_total", "reason=\"deleted\""));
        Assert.True(Value(during, "cordon_sandboxes", "state=\"running\"", $"image=\"{ServerFixture.TestImage}\"") >= 1);
        Assert.True(Value(during, "cordon_host_memory_bytes", "kind=\"total\"") > Value(during, "cordon_host_memory_bytes", "kind=\"available\""));
        Assert.True(Value(during, "cordon_host_memory_bytes", "kind=\"promised\"") >= 64L << 20);
        Assert.True(Value(during, "cordon_host_disk_bytes", "kind=\"available\"") > 0);
        Assert.Contains("# TYPE cordon_sandbox_create_duration_seconds histogram", during, StringComparison.Ordinal);

        // The dashboard in docs/ plots only series the server exports. (Its ASP.NET Core panels are that framework's
        // own series; with several servers in one test process they are not reliably this one's.)
        var dashboard = await File.ReadAllTextAsync(Path.Combine(TestPaths.RepositoryRoot, "docs", "grafana-dashboard.json"), Token);
        var plotted = System.Text.RegularExpressions.Regex.Matches(dashboard, @"\bcordon_[a-z_]+")
            .Select(m => System.Text.RegularExpressions.Regex.Replace(m.Value, "_(bucket|count|sum)$", "")).Distinct().ToList();
        Assert.Contains("cordon_sandbox_creates_total", plotted);
        Assert.All(plotted, series => Assert.Contains($"# TYPE {series} ", during + after, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Metrics_NeedAnAdminKey()
    {
        var (_, secret) = await fixture.Server.CreateKeyAsync("metrics-tenant-" + Guid.NewGuid().ToString("N")[..6]);
        using var tenant = fixture.Server.HttpWith(secret);
        using var anonymous = new HttpClient { BaseAddress = fixture.Server.Address };

        using var asTenant = await tenant.GetAsync("/metrics", Token);
        using var asNobody = await anonymous.GetAsync("/metrics", Token);

        await ProblemAssert.IsProblemAsync(asTenant, HttpStatusCode.Forbidden, "admin_required");
        Assert.Equal(HttpStatusCode.Unauthorized, asNobody.StatusCode);
    }

    private async Task<string> ScrapeAsync()
    {
        using var response = await fixture.Server.Http.GetAsync("/metrics", Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        return await response.Content.ReadAsStringAsync(Token);
    }

    /// <summary>The sum of the samples of <paramref name="name"/> whose labels include every one given (several
    /// series may match: other tests' creates from snapshots, say); null when none does.</summary>
    private static double? Find(string scrape, string name, params string[] labels)
    {
        var values = scrape.Split('\n')
            .Where(line => line.StartsWith(name + "{", StringComparison.Ordinal) || line.StartsWith(name + " ", StringComparison.Ordinal))
            .Where(line => labels.All(l => line.Contains(l, StringComparison.Ordinal)))
            .Select(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture))
            .ToList();
        return values.Count == 0 ? null : values.Sum();
    }

    private static double Value(string scrape, string name, params string[] labels) => Find(scrape, name, labels) ?? 0;
}
