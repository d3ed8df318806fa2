using System.Globalization;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Secrets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Cordon.Server.Compat.E2b;

/// <summary>E2B's secrets API (<c>Secret.create</c>, <c>update</c>, <c>getInfo</c>, <c>list</c>, <c>destroy</c> of
/// the SDK) over <see cref="SecretService"/>. E2B's secrets name no hosts: such a secret goes only where a header
/// rule of a sandbox's <c>network.rules</c> puts it (<c>${e2b.secrets.NAME}</c>).</summary>
public static class E2bSecrets
{
    private const int DefaultPage = 100;

    public static void MapE2bSecrets(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/secrets").ExcludeFromDescription();
        group.MapGet("", List);
        group.MapPost("", CreateAsync);
        group.MapGet("/{id}", Get);
        group.MapPost("/{id}", UpdateAsync);
        group.MapDelete("/{id}", Delete);
    }

    private static Task<IResult> CreateAsync(HttpContext context, SecretService secrets) => E2bControlPlane.GuardAsync(async () =>
    {
        var body = await E2bControlPlane.ReadAsync<SecretBody>(context) ?? throw CordonException.Invalid("The body must hold name and value.");
        var secret = secrets.Create(ApiKeyMiddleware.Caller(context), body.Name ?? "", body.Value ?? "", null, body.Metadata);
        return Results.Json(Describe(secret), E2bControlPlane.Json, statusCode: 201);
    });

    private static Task<IResult> UpdateAsync(string id, HttpContext context, SecretService secrets) => E2bControlPlane.GuardAsync(async () =>
    {
        var body = await E2bControlPlane.ReadAsync<SecretBody>(context) ?? throw CordonException.Invalid("The body must hold value.");
        var secret = secrets.Update(ApiKeyMiddleware.Caller(context), id, body.Value ?? throw CordonException.Invalid("value is required."), null, body.Metadata);
        return Results.Json(Describe(secret), E2bControlPlane.Json);
    });

    private static Task<IResult> Get(string id, HttpContext context, SecretService secrets) => E2bControlPlane.GuardAsync(()
        => Task.FromResult(Results.Json(Describe(secrets.Get(ApiKeyMiddleware.Caller(context), id)), E2bControlPlane.Json)));

    /// <summary>A page by name; <c>X-Next-Token</c> (the page's last name) when more follow.</summary>
    private static Task<IResult> List(HttpContext context, SecretService secrets, int? limit, string? nextToken) => E2bControlPlane.GuardAsync(() =>
    {
        var size = limit ?? DefaultPage;
        if (size is < 1 or > SecretService.MaxPerOwner)
        {
            throw CordonException.Invalid($"limit must be between 1 and {SecretService.MaxPerOwner}.");
        }

        var caller = ApiKeyMiddleware.Caller(context);
        var page = secrets.List(caller, size, string.IsNullOrEmpty(nextToken) ? null : nextToken);
        if (page.Count == size && secrets.List(caller, 1, page[^1].Name).Count > 0)
        {
            context.Response.Headers["X-Next-Token"] = page[^1].Name;
        }

        return Task.FromResult(Results.Json(page.Select(Describe).ToList(), E2bControlPlane.Json));
    });

    private static Task<IResult> Delete(string id, HttpContext context, SecretService secrets) => E2bControlPlane.GuardAsync(()
        => Task.FromResult(secrets.Delete(ApiKeyMiddleware.Caller(context), id)
            ? Results.NoContent()
            : throw new CordonException(ErrorCode.SecretNotFound, $"No secret '{id}' exists.") { Subject = id }));

    private static object Describe(SecretRecord secret) => new
    {
        secretID = secret.Id,
        name = secret.Name,
        currentVersion = secret.Version,
        metadata = secret.Metadata,
        createdAt = secret.CreatedAt.ToString("O", CultureInfo.InvariantCulture),
        updatedAt = secret.UpdatedAt.ToString("O", CultureInfo.InvariantCulture),
    };

    private sealed record SecretBody
    {
        public string? Name { get; init; }

        public string? Value { get; init; }

        public Dictionary<string, string>? Metadata { get; init; }
    }
}
