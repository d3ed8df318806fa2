using System.Net;
using System.Text;
using Cordon.Testing;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>Finding 15: every number a caller sends is range-checked into a 4xx (or honoured within its range),
/// never a 500, an overflow or a stream cut short (threat model row 30).</summary>
public sealed class CallerNumberTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Envd_HugeDeadlineAndKeepalive_AreRefusedOrHonoured_NeverCut()
    {
        await using var sandbox = await EnvdSandbox.CreateAsync(Server.Http, Token, ServerFixture.TestImage);

        using var overflow = await StartAsync(sandbox, "echo hi", ("Connect-Timeout-Ms", "9223372036854775807"));
        using var negative = await StartAsync(sandbox, "echo hi", ("Connect-Timeout-Ms", "-5"));
        using var keepalive = await StartAsync(sandbox, "sleep 1; echo done", ("Keepalive-Ping-Interval", "2147483647"));
        using var deadline = await StartAsync(sandbox, "echo in-time", ("Connect-Timeout-Ms", "9999999999"));

        Assert.Contains("\"invalid_argument\"", await overflow.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
        Assert.Contains("\"invalid_argument\"", await negative.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
        var streamed = await keepalive.Content.ReadAsStringAsync(Token);
        Assert.Contains(Convert.ToBase64String(Encoding.UTF8.GetBytes("done\n")), streamed, StringComparison.Ordinal);
        Assert.Contains("\"end\"", streamed, StringComparison.Ordinal);
        Assert.Contains(Convert.ToBase64String(Encoding.UTF8.GetBytes("in-time\n")), await deadline.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("PUT", "/files?path=/tmp/f&mode=777777777777", "x")]
    [InlineData("PUT", "/files?path=/tmp/f&mode=-1", "x")]
    [InlineData("PUT", "/files?path=/tmp/f&mode=99999999999999999999999", "x")]
    [InlineData("GET", "/files/list?path=/&depth=99999999999", null)]
    [InlineData("GET", "/files/list?path=/&depth=-3", null)]
    [InlineData("POST", "/timeout", "{\"timeoutSeconds\": 99999999999999}")]
    [InlineData("POST", "/timeout", "{\"timeoutSeconds\": -1}")]
    [InlineData("POST", "/timeout", "{\"timeoutSeconds\": 1e400}")]
    [InlineData("POST", "/exec", "{\"cmd\": \"true\", \"timeoutSeconds\": 99999999999999}")]
    [InlineData("POST", "/exec", "{\"cmd\": \"true\", \"timeoutSeconds\": -7}")]
    [InlineData("GET", "/ports/0/", null)]
    [InlineData("GET", "/ports/99999999999/", null)]
    public async Task Rest_OutOfRangeNumbers_Are4xx(string method, string route, string? body)
    {
        await using var sandbox = await Server.CreateSandboxAsync();
        using var request = new HttpRequestMessage(new HttpMethod(method), $"/v1/sandboxes/{sandbox.Id}{route}");
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, body.StartsWith('{') ? "application/json" : "text/plain");
        }

        using var response = await Server.Http.SendAsync(request, Token);
        var text = await response.Content.ReadAsStringAsync(Token);

        Assert.True((int)response.StatusCode is >= 400 and < 500, $"{method} {route}: {(int)response.StatusCode} {text}");
    }

    [Theory]
    [InlineData("{\"image\": \"busybox\", \"cpu\": 1e308}")]
    [InlineData("{\"image\": \"busybox\", \"cpu\": -1}")]
    [InlineData("{\"image\": \"busybox\", \"memoryMiB\": 9223372036854775807}")]
    [InlineData("{\"image\": \"busybox\", \"memoryMiB\": -1}")]
    [InlineData("{\"image\": \"busybox\", \"diskMiB\": 9223372036854775807}")]
    [InlineData("{\"image\": \"busybox\", \"maxProcesses\": -1}")]
    [InlineData("{\"image\": \"busybox\", \"timeoutSeconds\": 99999999999}")]
    public async Task Rest_CreateWithOutOfRangeResources_Is4xx(string body)
    {
        using var response = await Server.Http.PostAsync("/v1/sandboxes", new StringContent(body, Encoding.UTF8, "application/json"), Token);
        var text = await response.Content.ReadAsStringAsync(Token);

        Assert.True((int)response.StatusCode is >= 400 and < 500, $"{body}: {(int)response.StatusCode} {text}");
    }

    private static async Task<HttpResponseMessage> StartAsync(EnvdSandbox sandbox, string shell, (string Name, string Value) header)
    {
        var message = Encoding.UTF8.GetBytes($"{{\"process\":{{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"{shell}\"]}}}}");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/process.Process/Start") { Content = new ByteArrayContent(EnvdSandbox.Envelope(message)) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/connect+json");
        request.Headers.Add("E2b-Sandbox-Id", sandbox.Id);
        request.Headers.Add("E2b-Sandbox-Port", "49983");
        request.Headers.Add("X-Access-Token", sandbox.AccessToken);
        request.Headers.Add(header.Name, header.Value);
        return await sandbox.Http.SendAsync(request, Token);
    }
}
