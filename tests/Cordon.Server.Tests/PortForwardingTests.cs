using System.Net;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>REST access to a server inside a sandbox (<c>/v1/sandboxes/{id}/ports/{port}/…</c>): the bytes travel
/// through the sandbox's agent, so the sandbox needs no network of its own.</summary>
[Collection(DefaultImageCollection.Name)]
public sealed class PortForwardingTests(DefaultImageServer fixture)
{
    [Fact]
    public async Task HttpServerInTheSandbox_IsReachedThroughTheApi_AndAClosedPortSaysSo()
    {
        var token = TestContext.Current.CancellationToken;
        await using var sandbox = await fixture.CreateSandboxAsync();
        await sandbox.ShAsync("mkdir -p /srv/site && echo 'hello from port 8080' > /srv/site/greeting.txt");
        await sandbox.ExecAsync(ExecRequestBody.FromShell("cd /srv/site && setsid python3 -m http.server 8080 --bind 127.0.0.1 >/dev/null 2>&1 &"));
        var ready = await sandbox.ShAsync("for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1");
        Assert.Equal(0, ready.ExitCode);

        using var served = await fixture.Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/ports/8080/greeting.txt?x=1", token);
        using var closed = await fixture.Server.Http.GetAsync($"/v1/sandboxes/{sandbox.Id}/ports/8099/", token);

        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal("hello from port 8080\n", await served.Content.ReadAsStringAsync(token));
        var problem = await ProblemAssert.IsProblemAsync(closed, HttpStatusCode.BadGateway, "port_unreachable");
        Assert.Contains("Nothing is listening on port 8099", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }
}
