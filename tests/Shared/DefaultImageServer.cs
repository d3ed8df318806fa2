using System.Net.Http.Json;
using Cordon.Protocol.Api;
using Xunit;

namespace Cordon.Testing;

/// <summary>A server whose default image is prepared as `./cordon serve` prepares it: built from Debian
/// packages with mmdebstrap on a new machine (minutes, once), linked from the host cache afterwards.
/// Shared by every test class that needs Python, Node.js and the Jupyter kernel.</summary>
public sealed class DefaultImageServer : IAsyncLifetime
{
    private ServerFixture? _server;

    public ServerFixture Server => _server ?? throw new InvalidOperationException("The server has not started.");

    public async ValueTask InitializeAsync()
    {
        _server = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?> { ["Cordon:PrepareDefaultImage"] = "true" });
        using var http = new HttpClient { BaseAddress = _server.Address };
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        HealthReport? health;
        do
        {
            // Preparing is a background job; /health reports its state, which is what we wait on.
            await Task.Delay(500, limit.Token);
            health = await http.GetFromJsonAsync("/health", ApiJsonContext.Default.HealthReport, limit.Token);
            if (health!.DefaultImage == "failed")
            {
                throw new InvalidOperationException("The default image failed to build; the server log says why.");
            }
        }
        while (health.DefaultImage != "ready");
    }

    /// <summary>A default-image sandbox that is destroyed when disposed.</summary>
    public async Task<TestSandbox> CreateSandboxAsync(CreateSandboxRequest? request = null)
    {
        var info = await Server.Client.CreateSandboxAsync((request ?? new CreateSandboxRequest()) with { TimeoutSeconds = 600 });
        return new TestSandbox(Server.Client, info);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
