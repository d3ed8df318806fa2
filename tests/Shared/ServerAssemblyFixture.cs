using Xunit;

namespace Cordon.Testing;

/// <summary>xunit's handle on the one server of a test assembly.</summary>
public sealed class ServerAssemblyFixture : IAsyncLifetime
{
    private ServerFixture? _server;

    public ServerFixture Server => _server ?? throw new InvalidOperationException("The server has not started.");

    public async ValueTask InitializeAsync() => _server = await ServerFixture.StartAsync();

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
