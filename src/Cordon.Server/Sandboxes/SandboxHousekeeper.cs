using Microsoft.Extensions.Hosting;

namespace Cordon.Server.Sandboxes;

/// <summary>Enforces sandbox timeouts once a second.</summary>
public sealed class SandboxHousekeeper(SandboxService sandboxes) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            await sandboxes.ExpireDueAsync(stoppingToken);
        }
    }
}
