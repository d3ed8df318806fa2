using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Cordon.Server.Api;

/// <summary>The REST adapter for warm pools (admin only): sandboxes started ahead per image, taken by creates.</summary>
public static class PoolEndpoints
{
    public static void MapPoolEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/pools").WithTags("Pools");

        group.MapGet("", (HttpContext context, SandboxService sandboxes) =>
        {
            ImageEndpoints.RequireAdmin(context);
            return Results.Ok(sandboxes.Pools());
        }).WithName("ListPools").Produces<List<WarmPool>>()
            .WithSummary("The warm pools: per image, how many sandboxes are kept started, how many are ready, and how many creates took one (claims) or found none (misses).");

        group.MapPut("/{image}", (string image, SetPoolRequest request, HttpContext context, SandboxService sandboxes)
            => Results.Ok(sandboxes.SetPool(ApiKeyMiddleware.Caller(context), image, request.Size)))
            .WithName("SetPool").Produces<WarmPool>()
            .WithSummary("Keep this many sandboxes of an image started ahead (0 ends the pool); kept across restarts. A create asking for the defaults (no cpu, memory, disk, processes, network, snapshot, volumes or secrets of its own) takes one.");
    }
}
