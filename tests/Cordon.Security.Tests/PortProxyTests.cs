using System.Net;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>What a caller of a sandbox's port sends reaches the sandbox's server, except what is Cordon's: its
/// keys and tokens never travel into the sandbox, and the sandbox's cookies stay on its own path (threat model
/// row 20).</summary>
public sealed class PortProxyTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    [Fact]
    public async Task Rest_PortRequest_CarriesNoCordonCredential_AndScopesTheSandboxsCookies()
    {
        var token = TestContext.Current.CancellationToken;
        await using var sandbox = await Server.CreateSandboxAsync();
        var (_, tenantKey) = await Server.CreateKeyAsync("proxy-tenant");

        // A one-shot server that records the request it receives and sets a cookie for the whole host.
        await sandbox.ExecAsync(ExecRequestBody.FromShell(
            "printf 'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\nSet-Cookie: session=abc; Path=/app; Domain=example.com; HttpOnly\\r\\n\\r\\nok' " +
            "| setsid nc -l -p 8080 > /tmp/request 2>/dev/null &"));
        Assert.Equal(0, (await sandbox.ShAsync("for i in $(seq 1 100); do netstat -ltn | grep -q ':8080 ' && exit 0; sleep 0.05; done; exit 1")).ExitCode);

        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/sandboxes/{sandbox.Id}/ports/8080/app/page");
        request.Headers.Add("X-API-Key", tenantKey);                // a second Cordon key, besides the admin bearer
        request.Headers.Add("X-Access-Token", "envd-token-0123456789");
        request.Headers.Add("X-Forwarded-For", "10.9.8.7");
        request.Headers.Add("Cookie", "app=1");
        request.Headers.Add("X-App-Token", "keep-me");
        using var response = await Server.Http.SendAsync(request, token);
        var received = (await sandbox.ShAsync("cat /tmp/request")).Stdout;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain(ServerFixture.AdminKey, received, StringComparison.Ordinal);
        Assert.DoesNotContain(tenantKey, received, StringComparison.Ordinal);
        Assert.DoesNotContain("envd-token-0123456789", received, StringComparison.Ordinal);
        Assert.DoesNotContain("10.9.8.7", received, StringComparison.Ordinal);
        Assert.Contains("X-App-Token: keep-me", received, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Cookie: app=1", received, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("GET /app/page ", received, StringComparison.Ordinal);
        Assert.Equal($"session=abc; Path=/v1/sandboxes/{sandbox.Id}/ports/8080/app; HttpOnly", Assert.Single(response.Headers.GetValues("Set-Cookie")));
    }
}
