using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Secrets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Cordon.Server.Api;

/// <summary>The REST adapter for secrets: each API key's own, write-only values.</summary>
public static class SecretEndpoints
{
    public static void MapSecretEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/secrets").WithTags("Secrets");

        group.MapPost("", (CreateSecretRequest request, HttpContext context, SecretService secrets) =>
        {
            var secret = secrets.Create(ApiKeyMiddleware.Caller(context), request.Name, request.Value, request.Hosts, request.Metadata);
            return Results.Created($"/v1/secrets/{secret.Name}", secret.ToInfo());
        }).WithName("CreateSecret").Produces<SecretInfo>(201)
            .WithSummary("Store a secret. Sandboxes created with it in 'secrets' hold a placeholder; the egress proxy puts the value in its place in request headers on HTTPS to its hosts only. No answer ever carries the value.");

        group.MapGet("", (HttpContext context, SecretService secrets)
            => Results.Ok(secrets.List(ApiKeyMiddleware.Caller(context), SecretService.MaxPerOwner, null).Select(s => s.ToInfo()).ToList()))
            .WithName("ListSecrets").Produces<List<SecretInfo>>().WithSummary("This API key's secrets, by name (never their values).");

        group.MapGet("/{name}", (string name, HttpContext context, SecretService secrets)
            => Results.Ok(secrets.Get(ApiKeyMiddleware.Caller(context), name).ToInfo()))
            .WithName("GetSecret").Produces<SecretInfo>();

        group.MapPut("/{name}", (string name, UpdateSecretRequest request, HttpContext context, SecretService secrets)
            => Results.Ok(secrets.Update(ApiKeyMiddleware.Caller(context), name, request.Value, request.Hosts, request.Metadata).ToInfo()))
            .WithName("UpdateSecret").Produces<SecretInfo>()
            .WithSummary("Change a secret's value, hosts or metadata (fields left out are kept); sandboxes' next connections use the new value.");

        group.MapDelete("/{name}", (string name, HttpContext context, SecretService secrets)
            => secrets.Delete(ApiKeyMiddleware.Caller(context), name)
                ? Results.NoContent()
                : throw new CordonException(ErrorCode.SecretNotFound, $"No secret '{name}' exists for this API key; GET /v1/secrets lists them.") { Subject = name })
            .WithName("DeleteSecret").Produces(204).WithSummary("Delete a secret; sandboxes' placeholders for it are no longer filled in.");
    }
}
