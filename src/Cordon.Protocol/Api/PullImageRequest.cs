namespace Cordon.Protocol.Api;

/// <summary>Pulls an image from an OCI registry (<c>POST /v1/images</c> with a JSON body).</summary>
public sealed record PullImageRequest
{
    /// <summary>The image reference: <c>registry.example.com:5000/team/app:1.2</c>, <c>…@sha256:…</c>, or a Docker
    /// Hub name such as <c>python:3.12</c>.</summary>
    public required string From { get; init; }

    /// <summary>The name it gets here; by default the reference's last path component and tag (<c>app:1.2</c>).</summary>
    public string? Name { get; init; }

    /// <summary>Basic credentials for the registry (also exchanged for a bearer token where the registry asks for
    /// one); used for this pull only, never stored or logged.</summary>
    public RegistryCredentials? Credentials { get; init; }
}

/// <summary>Credentials for a registry: a username and either the password (or token) itself, or the name of a secret
/// of the caller's key that holds it (<c>POST /v1/secrets</c>; its hosts must allow the registry's host).</summary>
public sealed record RegistryCredentials
{
    public required string Username { get; init; }

    public string? Password { get; init; }

    /// <summary>A secret of the caller's key whose value is the password, instead of <see cref="Password"/>: stored once,
    /// never sent again, used for this registry only if the secret's hosts allow it.</summary>
    public string? PasswordSecret { get; init; }
}
