using Microsoft.AspNetCore.Builder;

namespace Cordon.Server;

/// <summary>A started server: its application and the address it listens on. Disposing stops it;
/// sandboxes keep running and are adopted by the next start.</summary>
public sealed class RunningServer(WebApplication app, Uri address) : IAsyncDisposable
{
    public WebApplication App { get; } = app;

    public Uri Address { get; } = address;

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
