using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Cordon.Server.Api;

/// <summary>The REST adapter for API keys (admin only). A tenant key sees only the sandboxes it created.</summary>
public static class KeyEndpoints
{
    /// <param name="Quotas">A tenant key's own quotas; fields left out (or null) take the server's defaults.</param>
    public sealed record CreateKeyRequest(string Name, bool Admin = false, KeyQuotas? Quotas = null);

    /// <param name="Quotas">What the key may hold and how fast it may call; null for an admin key.</param>
    /// <param name="Key">The secret: in the answer to its creation only.</param>
    public sealed record KeyInfo(string Id, string Name, bool Admin, DateTimeOffset CreatedAt, KeyQuotas? Quotas, string? Key = null);

    /// <summary>A key's quotas (null for an admin key, which has none) and what it holds of each now.</summary>
    public sealed record QuotaInfo(KeyQuotas? Quotas, QuotaHeld Held);

    public sealed record QuotaHeld(int Sandboxes, double Cpus, long MemoryMiB, long DiskMiB, int BackgroundCommands);

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

            Validate(request.Quotas);
            var (key, secret) = keys.Create(request.Name, request.Admin, request.Quotas);
            return Results.Created($"/v1/keys/{key.Id}", new KeyInfo(key.Id, key.Name, key.Admin, key.CreatedAt, key.Quotas, secret));
        }).WithName("CreateKey").Produces<KeyInfo>(201).WithSummary("Create an API key; its secret is in this answer only.");

        group.MapGet("", (HttpContext context, ApiKeyService keys) =>
        {
            ImageEndpoints.RequireAdmin(context);
            return Results.Ok(keys.List().Select(k => new KeyInfo(k.Id, k.Name, k.Admin, k.CreatedAt, k.Quotas)).ToList());
        }).WithName("ListKeys").Produces<List<KeyInfo>>();

        group.MapPut("/{id}/quotas", (string id, KeyQuotas quotas, HttpContext context, ApiKeyService keys) =>
        {
            ImageEndpoints.RequireAdmin(context);
            Validate(quotas);
            var key = keys.SetQuotas(id, quotas) ?? throw new CordonException(ErrorCode.KeyNotFound, $"No API key '{id}' exists.") { Subject = id };
            return Results.Ok(new KeyInfo(key.Id, key.Name, key.Admin, key.CreatedAt, key.Quotas));
        }).WithName("SetKeyQuotas").Produces<KeyInfo>().WithSummary("Replace a tenant key's own quotas (fields left out take the server's defaults); they apply to its next requests and creates.");

        app.MapGet("/v1/quotas", (HttpContext context, SandboxService sandboxes) =>
        {
            var usage = sandboxes.Usage(ApiKeyMiddleware.Caller(context));
            return Results.Ok(new QuotaInfo(usage.Quotas, new QuotaHeld(usage.Sandboxes, usage.Cpus, usage.MemoryMiB, usage.DiskMiB, usage.BackgroundCommands)));
        }).WithTags("Keys").WithName("GetQuotas").Produces<QuotaInfo>().WithSummary("The calling key's quotas and what it holds of each now.");

        group.MapDelete("/{id}", (string id, HttpContext context, ApiKeyService keys) =>
        {
            ImageEndpoints.RequireAdmin(context);
            return keys.Delete(id) ? Results.NoContent() : throw new CordonException(ErrorCode.KeyNotFound, $"No API key '{id}' exists.") { Subject = id };
        }).WithName("DeleteKey").Produces(204);
    }

    private static void Validate(KeyQuotas? quotas)
    {
        if (quotas is null)
        {
            return;
        }

        var problems = new List<System.ComponentModel.DataAnnotations.ValidationResult>();
        if (!System.ComponentModel.DataAnnotations.Validator.TryValidateObject(quotas, new(quotas), problems, validateAllProperties: true))
        {
            throw CordonException.Invalid("quotas: " + string.Join(" ", problems.Select(p => p.ErrorMessage)));
        }
    }
}
