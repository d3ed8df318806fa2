using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>Secrets as a tenant meets them: stored once, never returned, never inside a sandbox, and put into request
/// headers by the egress proxy only on HTTPS to the hosts they allow. What arrived is read from the test internet's
/// own log of /record/ requests, which the sandbox never sees.</summary>
[Collection(DefaultImageCollection.Name)]
public sealed class SecretTests(DefaultImageServer fixture)
{
    private const string Pkgs = "pkgs." + TestInternet.Domain;

    /// <summary>A value no test writes anywhere else; sandbox commands only ever hold it in two halves.</summary>
    private static string NewValue() => "v" + Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N")[..8];

    private async Task<(CordonClient Client, HttpClient Http)> TenantAsync()
    {
        var (_, key) = await fixture.Server.CreateKeyAsync("secrets-" + Guid.NewGuid().ToString("N")[..6]);
        return (new CordonClient(fixture.Server.Address, key), fixture.Server.HttpWith(key));
    }

    /// <summary>The headers /record/<paramref name="tag"/> arrived with, from the test internet's log.</summary>
    private static JsonElement? Recorded(string tag)
        => TestInternet.RecordedRequests.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(r => r.GetProperty("path").GetString() == "/record/" + tag)
            .Select(r => (JsonElement?)r.GetProperty("headers"))
            .LastOrDefault();

    /// <summary>Files under the places a sandbox keeps text, and every process's environment, holding the value
    /// (searched for as two halves joined inside the sandbox, so no command line ever holds it whole).</summary>
    private static async Task<string> FindInsideAsync(TestSandbox sandbox, string value)
    {
        var half = value.Length / 2;
        var found = await sandbox.ShAsync(
            $"a='{value[..half]}'; b='{value[half..]}'; grep -rlsF \"$a$b\" /etc /tmp /root /home /var /run /proc/[0-9]*/environ 2>/dev/null; env | grep -F \"$a$b\"; true", 120);
        return found.Stdout + found.Stderr;
    }

    [Fact]
    public async Task Secret_ReachesOnlyItsHostOverHttps_AndNeverEntersTheSandbox()
    {
        TestInternet.EnsureUp();
        var (client, http) = await TenantAsync();
        using var _ = client;
        using var __ = http;
        var value = NewValue();
        var name = "api-" + Guid.NewGuid().ToString("N")[..8];

        using (var created = await http.PostAsJsonAsync("/v1/secrets", new { name, value, hosts = new[] { Pkgs } }))
        {
            var body = await created.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            Assert.DoesNotContain(value, body, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(value, await http.GetStringAsync("/v1/secrets"), StringComparison.Ordinal);
        Assert.DoesNotContain(value, await http.GetStringAsync($"/v1/secrets/{name}"), StringComparison.Ordinal);

        var info = await client.CreateSandboxAsync(new CreateSandboxRequest
        {
            Secrets = new Dictionary<string, string> { ["API_TOKEN"] = name },
            TimeoutSeconds = 600,
        });
        await using var sandbox = new TestSandbox(client, info);
        Assert.Equal(name, info.Secrets["API_TOKEN"]);
        await using (var ca = File.OpenRead(TestInternet.CaCertificate))
        {
            await client.WriteFileAsync(sandbox.Id, "/tmp/ca.crt", ca);
        }

        var placeholder = (await sandbox.ShAsync("printf %s \"$API_TOKEN\"")).Stdout;
        Assert.StartsWith($"cordon-secret-{name}-", placeholder);

        var tag = Guid.NewGuid().ToString("N")[..8];
        var curl = await sandbox.ShAsync(
            $"h=\"Authorization: Bearer $API_TOKEN\"; " +
            $"curl -sS --max-time 20 -H \"$h\" https://{Pkgs}/record/{tag}-allowed; " +
            $"curl -sS --max-time 20 --cacert /tmp/ca.crt -H \"$h\" https://{TestInternet.OtherName}/record/{tag}-other; " +
            $"curl -sS --max-time 20 -H \"$h\" http://{Pkgs}/record/{tag}-plain; " +
            $"curl -sS --max-time 20 -H \"$h\" -H 'Host: {TestInternet.OtherName}' -w ' %{{http_code}}' https://{Pkgs}/record/{tag}-fronted; " +
            $"head -c 300000 /dev/zero | curl -sS --max-time 20 -H \"$h\" -H 'Transfer-Encoding: chunked' -T - https://{Pkgs}/record/{tag}-chunked", 120);

        Assert.True(curl.Stdout.StartsWith("recorded\nrecorded\nrecorded\n", StringComparison.Ordinal), curl.Stdout + curl.Stderr); // the whole answer when not
        Assert.Contains($"names host '{TestInternet.OtherName}' on a connection opened for '{Pkgs}'", curl.Stdout, StringComparison.Ordinal);
        Assert.Contains("421", curl.Stdout, StringComparison.Ordinal);
        Assert.EndsWith("got 300000 bytes\n", curl.Stdout, StringComparison.Ordinal);

        // The value went to its host over HTTPS only; elsewhere the placeholder went, unchanged.
        Assert.Equal("Bearer " + value, Recorded(tag + "-allowed")?.GetProperty("authorization").GetString());
        Assert.Equal("Bearer " + value, Recorded(tag + "-chunked")?.GetProperty("authorization").GetString());
        Assert.Equal("Bearer " + placeholder, Recorded(tag + "-other")?.GetProperty("authorization").GetString());
        Assert.Equal("Bearer " + placeholder, Recorded(tag + "-plain")?.GetProperty("authorization").GetString());
        Assert.Null(Recorded(tag + "-fronted"));

        Assert.Equal("", await FindInsideAsync(sandbox, value));
        Assert.Contains("environ", await FindInsideAsync(sandbox, placeholder), StringComparison.Ordinal); // the search finds what is there

        // Another tenant's (even an admin's) view: no such secret, and no sandbox can be given it.
        using (var admin = await fixture.Server.Http.GetAsync($"/v1/secrets/{name}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, admin.StatusCode);
        }

        using var theirs = await fixture.Server.Http.PostAsJsonAsync("/v1/sandboxes", new { secrets = new Dictionary<string, string> { ["T"] = name } });
        Assert.Equal(HttpStatusCode.BadRequest, theirs.StatusCode);
        Assert.Contains("no secret", await theirs.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // A new value counts from the next connection; a deleted secret is no longer filled in.
        var second = NewValue();
        await client.UpdateSecretAsync(name, new UpdateSecretRequest { Value = second });
        await sandbox.ShAsync($"curl -sS --max-time 20 -H \"Authorization: Bearer $API_TOKEN\" https://{Pkgs}/record/{tag}-updated");
        Assert.Equal("Bearer " + second, Recorded(tag + "-updated")?.GetProperty("authorization").GetString());
        Assert.Equal(2, (await client.GetSecretAsync(name)).Version);

        await client.DeleteSecretAsync(name);
        // (the proxy no longer opens the connection: the test internet's own certificate reaches curl)
        await sandbox.ShAsync($"curl -sS --max-time 20 --cacert /tmp/ca.crt -H \"Authorization: Bearer $API_TOKEN\" https://{Pkgs}/record/{tag}-deleted");
        Assert.Equal("Bearer " + placeholder, Recorded(tag + "-deleted")?.GetProperty("authorization").GetString());
    }

    [Fact]
    public async Task HeaderRule_SetsASecretTheSandboxNeverHeld_OnlyForItsHost()
    {
        TestInternet.EnsureUp();
        var (client, http) = await TenantAsync();
        using var _ = client;
        using var __ = http;
        var value = NewValue();
        var name = "key-" + Guid.NewGuid().ToString("N")[..8];
        await client.CreateSecretAsync(new CreateSecretRequest { Name = name, Value = value }); // no hosts: rules decide

        var headers = new Dictionary<string, IReadOnlyDictionary<string, string>>
        {
            [Pkgs] = new Dictionary<string, string> { ["X-Api-Key"] = "${secrets." + name + "}", ["X-Plain"] = "literal" },
        };
        var info = await client.CreateSandboxAsync(new CreateSandboxRequest
        {
            TimeoutSeconds = 600,
            Network = new NetworkPolicy { Internet = true, Headers = headers },
        });
        await using var sandbox = new TestSandbox(client, info);
        await using (var ca = File.OpenRead(TestInternet.CaCertificate))
        {
            await client.WriteFileAsync(sandbox.Id, "/tmp/ca.crt", ca);
        }

        var tag = Guid.NewGuid().ToString("N")[..8];
        var curl = await sandbox.ShAsync(
            $"curl -sS --max-time 20 -H 'X-Api-Key: forged' https://{Pkgs}/record/{tag}-ruled; " +
            $"curl -sS --max-time 20 --cacert /tmp/ca.crt https://{TestInternet.OtherName}/record/{tag}-other; " +
            $"python3 -c \"import urllib.request; print(urllib.request.urlopen('https://{Pkgs}/record/{tag}-python').read().decode().strip())\"; " +
            $"node -e \"require('https').get('https://{Pkgs}/record/{tag}-node', r => r.pipe(process.stdout))\"", 120);

        Assert.Equal("recorded\nrecorded\nrecorded\nrecorded\n", curl.Stdout);
        Assert.Equal(value, Recorded(tag + "-ruled")?.GetProperty("x-api-key").GetString()); // the rule's replaces the sandbox's
        Assert.Equal("literal", Recorded(tag + "-ruled")?.GetProperty("x-plain").GetString());
        Assert.Equal(value, Recorded(tag + "-python")?.GetProperty("x-api-key").GetString());
        Assert.Equal(value, Recorded(tag + "-node")?.GetProperty("x-api-key").GetString());
        Assert.False(Recorded(tag + "-other")!.Value.TryGetProperty("x-api-key", out JsonElement __2));
        Assert.Equal("", await FindInsideAsync(sandbox, value));

        var policy = await client.GetNetworkAsync(sandbox.Id);
        Assert.Equal("${secrets." + name + "}", policy.Headers![Pkgs]["X-Api-Key"]);

        // A rule naming a secret the tenant does not have is refused when set, not when used.
        using var missing = await http.PutAsJsonAsync($"/v1/sandboxes/{sandbox.Id}/network",
            new { internet = true, headers = new Dictionary<string, object> { [Pkgs] = new { Authorization = "${secrets.nope}" } } });
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("nope", await missing.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"name":"bad name","value":"x"}""", "not usable")]
    [InlineData("""{"name":"sec_x","value":"x"}""", "not usable")]
    [InlineData("""{"name":"ok","value":"line\r\nX-Injected: 1"}""", "printable ASCII")]
    [InlineData("""{"name":"ok","value":""}""", "1-16384")]
    [InlineData("""{"name":"ok","value":"x","hosts":["10.0.0.1"]}""", "not a host name")]
    [InlineData("""{"name":"ok","value":"x","hosts":["api.example.com:8443"]}""", "without a port")]
    public async Task BadSecret_IsRefusedWithA400ThatSaysWhy(string body, string expected)
    {
        using var response = await fixture.Server.Http.PostAsync("/v1/secrets", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, text, StringComparison.Ordinal);
    }
}
