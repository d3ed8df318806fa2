using Cordon.Protocol.Api;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Cordon.Server.Api;

/// <summary><c>GET /health</c>: no auth; what the host supports and whether sandboxes can be created.</summary>
public static class HealthEndpoints
{
    public static void MapHealthEndpoints(this IEndpointRouteBuilder app)
        => app.MapGet("/health", async (SandboxService sandboxes, CancellationToken cancellationToken) => Results.Ok(await sandboxes.HealthAsync(cancellationToken)))
            .WithTags("Health").WithName("Health").Produces<HealthReport>();
}
