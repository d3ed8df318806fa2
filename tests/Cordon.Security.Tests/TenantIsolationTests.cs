using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Cordon.Protocol.Api;
using Cordon.Testing;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>A hostile tenant with a key of its own, against another tenant's sandbox: on every surface (REST, the
/// port route, E2B's control plane and sandbox plane, MCP's sandbox ids, command handles and sessions) the
/// sandbox does not exist for it, and nothing it sends changes the sandbox (threat model rows 15, 18, 19 and 26).</summary>
public sealed class TenantIsolationTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Rest_EveryRouteOfAnotherTenantsSandbox_Answers404_AndChangesNothing()
    {
        var (_, victimKey) = await Server.CreateKeyAsync("victim");
        var (_, attackerKey) = await Server.CreateKeyAsync("attacker");
        using var victim = Server.HttpWith(victimKey);
        using var attacker = Server.HttpWith(attackerKey);
        using var created = await victim.PostAsJsonAsync("/v1/sandboxes", new { image = ServerFixture.TestImage, timeoutSeconds = 600 }, Token);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>(Token)).GetProperty("id").GetString()!;
        try
        {
            using var write = await victim.PutAsync($"/v1/sandboxes/{id}/files?path=/tmp/secret.txt", new StringContent("victim's data"), Token);
            write.EnsureSuccessStatusCode();
            var expiresBefore = (await victim.GetFromJsonAsync<JsonElement>($"/v1/sandboxes/{id}", Token)).GetProperty("expiresAt").GetString();

            var requests = new (HttpMethod Method, string Path, HttpContent? Body)[]
            {
                (HttpMethod.Get, $"/v1/sandboxes/{id}", null),
                (HttpMethod.Post, $"/v1/sandboxes/{id}/exec", Json(new { cmd = "echo pwned > /tmp/secret.txt" })),
                (HttpMethod.Get, $"/v1/sandboxes/{id}/files?path=/tmp/secret.txt", null),
                (HttpMethod.Put, $"/v1/sandboxes/{id}/files?path=/tmp/secret.txt", new StringContent("pwned")),
                (HttpMethod.Delete, $"/v1/sandboxes/{id}/files?path=/tmp/secret.txt", null),
                (HttpMethod.Get, $"/v1/sandboxes/{id}/files/list?path=/tmp", null),
                (HttpMethod.Get, $"/v1/sandboxes/{id}/files/stat?path=/tmp/secret.txt", null),
                (HttpMethod.Post, $"/v1/sandboxes/{id}/files/mkdir?path=/tmp/x", null),
                (HttpMethod.Post, $"/v1/sandboxes/{id}/files/rename", Json(new { from = "/tmp/secret.txt", to = "/tmp/moved" })),
                (HttpMethod.Get, $"/v1/sandboxes/{id}/events", null),
                (HttpMethod.Get, $"/v1/sandboxes/{id}/metrics", null),
                (HttpMethod.Post, $"/v1/sandboxes/{id}/timeout", Json(new { timeoutSeconds = 1 })),
                (HttpMethod.Post, $"/v1/sandboxes/{id}/pause", null),
                (HttpMethod.Post, $"/v1/sandboxes/{id}/resume", null),
                (HttpMethod.Post, $"/v1/sandboxes/{id}/code", Json(new { code = "print(1)" })),
                (HttpMethod.Get, $"/v1/sandboxes/{id}/contexts", null),
                (HttpMethod.Post, $"/v1/sandboxes/{id}/contexts", Json(new { language = "python" })),
                (HttpMethod.Get, $"/v1/sandboxes/{id}/contexts/default-python", null),
                (HttpMethod.Delete, $"/v1/sandboxes/{id}/contexts/default-python", null),
                (HttpMethod.Post, $"/v1/sandboxes/{id}/contexts/default-python/restart", null),
                (HttpMethod.Post, $"/v1/sandboxes/{id}/contexts/default-python/interrupt", null),
                (HttpMethod.Get, $"/v1/sandboxes/{id}/ports/8080/", null),
                (HttpMethod.Delete, $"/v1/sandboxes/{id}", null),
            };
            foreach (var (method, path, body) in requests)
            {
                using var request = new HttpRequestMessage(method, path) { Content = body };
                using var response = await attacker.SendAsync(request, Token);
                var text = await response.Content.ReadAsStringAsync(Token);
                Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {(int)response.StatusCode} {text}");
                Assert.Contains("sandbox_not_found", text, StringComparison.Ordinal);
            }

            using var listed = await attacker.GetAsync("/v1/sandboxes", Token);
            Assert.DoesNotContain(id, await listed.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);

            var after = await victim.GetFromJsonAsync<JsonElement>($"/v1/sandboxes/{id}", Token);
            Assert.Equal("running", after.GetProperty("state").GetString());
            Assert.Equal(expiresBefore, after.GetProperty("expiresAt").GetString());
            Assert.Equal("victim's data", await victim.GetStringAsync($"/v1/sandboxes/{id}/files?path=/tmp/secret.txt", Token));
        }
        finally
        {
            await victim.DeleteAsync($"/v1/sandboxes/{id}", Token);
        }
    }

    [Fact]
    public async Task E2b_ControlPlaneAndSandboxPlane_OfAnotherTenantsSandbox_AreClosed()
    {
        var (_, victimKey) = await Server.CreateKeyAsync("e2b-victim");
        var (_, attackerKey) = await Server.CreateKeyAsync("e2b-attacker");
        var victimSandbox = await E2bCreateAsync(victimKey, publicTraffic: null);
        var attackerSandbox = await E2bCreateAsync(attackerKey, publicTraffic: null);
        var id = victimSandbox.GetProperty("sandboxID").GetString()!;
        try
        {
            foreach (var (method, path) in new[]
            {
                (HttpMethod.Get, $"/sandboxes/{id}"), (HttpMethod.Post, $"/sandboxes/{id}/connect"), (HttpMethod.Post, $"/sandboxes/{id}/timeout"),
                (HttpMethod.Post, $"/sandboxes/{id}/pause"), (HttpMethod.Get, $"/sandboxes/{id}/metrics"), (HttpMethod.Delete, $"/sandboxes/{id}"),
            })
            {
                using var request = new HttpRequestMessage(method, path) { Content = method == HttpMethod.Post ? Json(new { timeout = 1 }) : null };
                request.Headers.Add("X-API-Key", attackerKey);
                using var response = await Raw().SendAsync(request, Token);
                Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {(int)response.StatusCode}");
            }

            // The attacker's own sandbox's tokens open nothing of the victim's sandbox.
            foreach (var token in new[] { attackerSandbox.GetProperty("envdAccessToken").GetString()!, attackerSandbox.GetProperty("trafficAccessToken").GetString()! })
            {
                using var envd = await SandboxPlaneAsync(id, 49983, "/process.Process/List", "{}", ("X-Access-Token", token));
                using var contexts = await SandboxPlaneAsync(id, 49999, "/contexts", null, ("E2B-Traffic-Access-Token", token));
                Assert.Equal(HttpStatusCode.Unauthorized, envd.StatusCode);
                Assert.Equal(HttpStatusCode.Unauthorized, contexts.StatusCode);
            }

            using var own = await SandboxPlaneAsync(id, 49983, "/process.Process/List", "{}", ("X-Access-Token", victimSandbox.GetProperty("envdAccessToken").GetString()!));
            Assert.Equal(HttpStatusCode.OK, own.StatusCode);
        }
        finally
        {
            await Server.Client.DeleteSandboxAsync(id, Token);
            await Server.Client.DeleteSandboxAsync(attackerSandbox.GetProperty("sandboxID").GetString()!, Token);
        }
    }

    /// <summary>Finding 8: key-less access through E2B's addressing reaches only the web ports of a sandbox whose
    /// creator asked for public traffic, and never the code interpreter's contexts.</summary>
    [Fact]
    public async Task E2b_KeylessAccess_ReachesOnlyPublicPorts_NeverContexts()
    {
        await using var rest = await Server.CreateSandboxAsync();
        var e2bPublic = await E2bCreateAsync(ServerFixture.AdminKey, publicTraffic: null);
        var e2bPrivate = await E2bCreateAsync(ServerFixture.AdminKey, publicTraffic: false);
        var publicId = e2bPublic.GetProperty("sandboxID").GetString()!;
        var privateId = e2bPrivate.GetProperty("sandboxID").GetString()!;
        try
        {
            foreach (var id in new[] { rest.Id, publicId, privateId })
            {
                await Server.Client.ExecAsync(id, ExecRequestBody.FromShell("mkdir -p /tmp/www && echo served > /tmp/www/index.html && (httpd -p 8000 -h /tmp/www &)"), Token);
            }

            using var restContexts = await SandboxPlaneAsync(rest.Id, 49999, "/contexts", null);
            using var restDelete = await SandboxPlaneAsync(rest.Id, 49999, "/contexts/default-python", null, method: HttpMethod.Delete);
            using var publicContexts = await SandboxPlaneAsync(publicId, 49999, "/contexts", null);
            using var restPort = await SandboxPlaneAsync(rest.Id, 8000, "/index.html", null, method: HttpMethod.Get);
            using var privatePort = await SandboxPlaneAsync(privateId, 8000, "/index.html", null, method: HttpMethod.Get);
            using var publicPort = await SandboxPlaneAsync(publicId, 8000, "/index.html", null, method: HttpMethod.Get);
            using var privateWithToken = await SandboxPlaneAsync(privateId, 8000, "/index.html", null, ("E2B-Traffic-Access-Token", e2bPrivate.GetProperty("trafficAccessToken").GetString()!), HttpMethod.Get);
            using var contextsWithToken = await SandboxPlaneAsync(publicId, 49999, "/contexts", null, ("E2B-Traffic-Access-Token", e2bPublic.GetProperty("trafficAccessToken").GetString()!), HttpMethod.Get);

            Assert.Equal(HttpStatusCode.Unauthorized, restContexts.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, restDelete.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, publicContexts.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, restPort.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, privatePort.StatusCode);
            Assert.Equal("served\n", await publicPort.Content.ReadAsStringAsync(Token));
            Assert.Equal("served\n", await privateWithToken.Content.ReadAsStringAsync(Token));
            Assert.NotEqual(HttpStatusCode.Unauthorized, contextsWithToken.StatusCode);
        }
        finally
        {
            await Server.Client.DeleteSandboxAsync(publicId, Token);
            await Server.Client.DeleteSandboxAsync(privateId, Token);
        }
    }

    /// <summary>Finding 11: a sandbox's tokens die with the key that created it.</summary>
    [Fact]
    public async Task DeletedKey_ItsSandboxesTokens_StopWorking()
    {
        var (keyId, secret) = await Server.CreateKeyAsync("short-lived");
        var sandbox = await E2bCreateAsync(secret, publicTraffic: false);
        var id = sandbox.GetProperty("sandboxID").GetString()!;
        var envdToken = sandbox.GetProperty("envdAccessToken").GetString()!;
        try
        {
            using var before = await SandboxPlaneAsync(id, 49983, "/process.Process/List", "{}", ("X-Access-Token", envdToken));
            using var deleted = await Server.Http.DeleteAsync($"/v1/keys/{keyId}", Token);
            using var after = await SandboxPlaneAsync(id, 49983, "/process.Process/List", "{}", ("X-Access-Token", envdToken));
            using var restAfter = await Server.HttpWith(secret).GetAsync("/v1/sandboxes", Token);

            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
            Assert.True(deleted.IsSuccessStatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, restAfter.StatusCode);
        }
        finally
        {
            await Server.Client.DeleteSandboxAsync(id, Token);
        }
    }

    [Fact]
    public async Task Mcp_SandboxIdsCommandHandlesAndSessions_OfAnotherTenant_AreClosed()
    {
        var (_, victimKey) = await Server.CreateKeyAsync("mcp-victim");
        var (_, attackerKey) = await Server.CreateKeyAsync("mcp-attacker");
        await using var victim = await McpAsync(victimKey);
        await using var attacker = await McpAsync(attackerKey);

        var created = await victim.CallToolAsync("create_sandbox", new Dictionary<string, object?> { ["image"] = ServerFixture.TestImage }, cancellationToken: Token);
        var id = created.StructuredContent!.Value.GetProperty("id").GetString()!;
        var started = await victim.CallToolAsync("run_command", new Dictionary<string, object?> { ["command"] = "sleep 300", ["background"] = true, ["sandboxId"] = id }, cancellationToken: Token);
        var handle = started.StructuredContent!.Value.GetProperty("handle").GetString()!;
        try
        {
            // Each answer is word for word the one for a sandbox or handle that never existed.
            const string noSandbox = "aaaaaaaaaaaaaaaaaaaa";
            const string noHandle = "cmd-000000000000";
            var calls = new (string Tool, Func<string, string, Dictionary<string, object?>> Arguments)[]
            {
                ("run_command", (s, _) => new() { ["command"] = "echo pwned > /tmp/x", ["sandboxId"] = s }),
                ("run_code", (s, _) => new() { ["code"] = "echo pwned", ["language"] = "bash", ["sandboxId"] = s }),
                ("read_file", (s, _) => new() { ["path"] = "/etc/hostname", ["sandboxId"] = s }),
                ("write_file", (s, _) => new() { ["path"] = "/tmp/x", ["content"] = "pwned", ["sandboxId"] = s }),
                ("list_files", (s, _) => new() { ["path"] = "/", ["sandboxId"] = s }),
                ("destroy_sandbox", (s, _) => new() { ["sandboxId"] = s }),
                ("read_command_output", (_, h) => new() { ["handle"] = h }),
                ("write_command_input", (_, h) => new() { ["handle"] = h, ["data"] = "x" }),
                ("signal_command", (_, h) => new() { ["handle"] = h, ["signal"] = "KILL" }),
                ("wait_command", (_, h) => new() { ["handle"] = h, ["timeoutSeconds"] = 1 }),
            };
            foreach (var (tool, arguments) in calls)
            {
                var result = await attacker.CallToolAsync(tool, arguments(id, handle), cancellationToken: Token);
                var unknown = await attacker.CallToolAsync(tool, arguments(noSandbox, noHandle), cancellationToken: Token);
                var text = Text(result).Replace(id, noSandbox, StringComparison.Ordinal).Replace(handle, noHandle, StringComparison.Ordinal);
                Assert.True(result.IsError == true, $"{tool}: {text}");
                Assert.Equal(Text(unknown), text);
            }

            // The victim's session: the attacker can neither speak in it nor end it.
            var session = victim.SessionId;
            Assert.False(string.IsNullOrEmpty(session));
            using var speak = new HttpRequestMessage(HttpMethod.Post, "/mcp")
            {
                Content = new StringContent("""{"jsonrpc":"2.0","id":7,"method":"tools/list"}""", Encoding.UTF8, "application/json"),
            };
            speak.Headers.Add("Mcp-Session-Id", session);
            speak.Headers.Add("MCP-Protocol-Version", "2025-06-18");
            speak.Headers.Accept.ParseAdd("application/json");
            speak.Headers.Accept.ParseAdd("text/event-stream");
            using var spoken = await Server.HttpWith(attackerKey).SendAsync(speak, Token);
            var spokenBody = await spoken.Content.ReadAsStringAsync(Token);
            Assert.False(spoken.IsSuccessStatusCode, $"tools/list in another key's session answered {(int)spoken.StatusCode}: {spokenBody}");
            Assert.DoesNotContain("run_command", spokenBody, StringComparison.Ordinal);
            using var end = new HttpRequestMessage(HttpMethod.Delete, "/mcp");
            end.Headers.Add("Mcp-Session-Id", session);
            using var ended = await Server.HttpWith(attackerKey).SendAsync(end, Token);
            Assert.False(ended.IsSuccessStatusCode, $"DELETE /mcp with another key's session {session} answered {(int)ended.StatusCode}");

            var output = await victim.CallToolAsync("read_command_output", new Dictionary<string, object?> { ["handle"] = handle }, cancellationToken: Token);
            Assert.NotEqual(true, output.IsError);
            Assert.True(output.StructuredContent!.Value.GetProperty("running").GetBoolean());
        }
        finally
        {
            await Server.Client.DeleteSandboxAsync(id, Token);
        }
    }

    private static string Text(CallToolResult result) => string.Concat(result.Content.OfType<TextContentBlock>().Select(t => t.Text));

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    private HttpClient Raw() => new() { BaseAddress = Server.Address };

    private async Task<JsonElement> E2bCreateAsync(string apiKey, bool? publicTraffic)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/sandboxes")
        {
            Content = Json(publicTraffic is { } open
                ? new { templateID = ServerFixture.TestImage, timeout = 600, network = new { allowPublicTraffic = open } }
                : (object)new { templateID = ServerFixture.TestImage, timeout = 600 }),
        };
        request.Headers.Add("X-API-Key", apiKey);
        using var http = Raw();
        using var response = await http.SendAsync(request, Token);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Token));
        return await response.Content.ReadFromJsonAsync<JsonElement>(Token);
    }

    /// <summary>A request through E2B's sandbox addressing, with no API key.</summary>
    private async Task<HttpResponseMessage> SandboxPlaneAsync(string id, int port, string path, string? json, (string Name, string Value)? header = null, HttpMethod? method = null)
    {
        using var request = new HttpRequestMessage(method ?? (json is null ? HttpMethod.Get : HttpMethod.Post), path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        request.Headers.Add("E2b-Sandbox-Id", id);
        request.Headers.Add("E2b-Sandbox-Port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (header is { } h)
        {
            request.Headers.Add(h.Name, h.Value);
        }

        using var http = Raw();
        return await http.SendAsync(request, Token);
    }

    /// <summary>The official MCP client on the server's /mcp with <paramref name="apiKey"/>, in a session.</summary>
    private async Task<McpClient> McpAsync(string apiKey)
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(Server.Address, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + apiKey },
        });
        // A protocol version that has sessions (2026-07-28 clients have none to steal).
        return await McpClient.CreateAsync(transport, new McpClientOptions { ProtocolVersion = "2025-11-25" }, cancellationToken: Token);
    }
}
