using System.Net.Http.Json;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The default image as `./cordon serve` prepares it: built from Debian packages with mmdebstrap on a
/// new machine (a few minutes), linked from the host cache afterwards.</summary>
public sealed class DefaultImageTests : IAsyncLifetime
{
    private ServerFixture _server = null!;

    public async ValueTask InitializeAsync()
        => _server = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?> { ["Cordon:PrepareDefaultImage"] = "true" });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task DefaultImage_Prepared_RunsPythonDataStackNodeAndGit()
    {
        using var http = new HttpClient { BaseAddress = _server.Address };
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        HealthReport? health;
        do
        {
            // Preparing is a background job; /health reports its state, which is what we wait on.
            await Task.Delay(500, limit.Token);
            health = await http.GetFromJsonAsync("/health", ApiJsonContext.Default.HealthReport, limit.Token);
            Assert.NotEqual("failed", health!.DefaultImage);
        }
        while (health.DefaultImage != "ready");

        var sandbox = await _server.Client.CreateSandboxAsync(new CreateSandboxRequest { TimeoutSeconds = 300 });
        await using var _ = new TestSandbox(_server.Client, sandbox);
        var result = await _server.Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell(
            "python3 -c 'import numpy, pandas, matplotlib, ipykernel; print(\"py\", numpy.__version__ > \"1\")' && " +
            "node -e 'console.log(\"node\", 6 * 7)' && npm --version >/dev/null && git --version >/dev/null && " +
            "curl --version >/dev/null && id -u user && echo MPLBACKEND=$MPLBACKEND") with
        { TimeoutSeconds = 120 });

        Assert.Equal("default", sandbox.Image);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal("py True\nnode 42\n1000\nMPLBACKEND=Agg\n", result.Stdout);
    }
}
