using Cordon.Protocol.Api;
using Cordon.Runtime;
using Cordon.Server.Images;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Api;

/// <summary><c>GET /health</c>: no auth; what the host supports and whether sandboxes can be created.</summary>
public static class HealthEndpoints
{
    public static void MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", async (ISandboxRuntime runtime, ImageService images, SandboxService sandboxes, IOptions<CordonOptions> options, CancellationToken cancellationToken) =>
        {
            var capabilities = await runtime.ProbeAsync(cancellationToken);
            var defaultImage = images.Find(options.Value.DefaultImage);
            return Results.Ok(new HealthReport
            {
                Status = capabilities.Available ? "ok" : "degraded",
                Version = CordonServer.Version,
                Runtimes =
                [
                    new RuntimeHealth
                    {
                        Name = capabilities.Name,
                        Available = capabilities.Available,
                        Version = capabilities.Version,
                        Cgroups = capabilities.Cgroups,
                        Seccomp = capabilities.Seccomp,
                        IdmappedMounts = capabilities.IdmappedMounts,
                        Lxcfs = capabilities.Lxcfs,
                        Warnings = capabilities.Warnings,
                        Problems = capabilities.Problems,
                        Fixed = capabilities.Fixed,
                    },
                ],
                DefaultImage = defaultImage?.Status ?? "missing",
                Sandboxes = sandboxes.LiveCount,
            });
        }).WithTags("Health").WithName("Health").Produces<HealthReport>();
    }
}
