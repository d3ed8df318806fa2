using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Cordon.Server.Api;

/// <summary>The REST adapter for API keys (admin only). A tenant key sees only the sandboxes it created.</summary>
public static class KeyEndpoints
{
    public sealed record CreateKeyRequest(string Name, bool Admin = false);

    public sealed record KeyInfo(string Id, string Name, bool Admin, DateTimeOffset CreatedAt, string? Key = null);

    public static void MapKeyEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/keys").WithTags("Keys");

        group.MapPost("", (CreateKeyRequest request, HttpContext context, ApiKeyService keys) =>
        {
            ImageEndpoints.RequireAdmin(context);
            if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 128)
            {
                throw CordonException.Invalid("name must be 1-128 characters.");
            }

            var (key, secret) = keys.Create(request.Name, request.Admin);
            return Results.Created($"/v1/keys/{key.Id}", new KeyInfo(key.Id, key.Name, key.Admin, key.CreatedAt, secret));
        }).WithName("CreateKey").Produces<KeyInfo>(201).WithSummary("Create an API key; its secret is in this answer only.");

        group.MapGet("", (HttpContext context, ApiKeyService keys) =>
        {
            ImageEndpoints.RequireAdmin(context);
            return Results.Ok(keys.List().Select(k => new KeyInfo(k.Id, k.Name, k.Admin, k.CreatedAt)).ToList());
        }).WithName("ListKeys").Produces<List<KeyInfo>>();

        group.MapDelete("/{id}", (string id, HttpContext context, ApiKeyService keys) =>
        {
            ImageEndpoints.RequireAdmin(context);
            return keys.Delete(id) ? Results.NoContent() : throw new CordonException(ErrorCode.KeyNotFound, $"No API key '{id}' exists.") { Subject = id };
        }).WithName("DeleteKey").Produces(204);
    }
}
