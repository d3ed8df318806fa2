namespace Cordon.Protocol.Api;

/// <summary>Body of <c>POST /v1/sandboxes/{id}/code</c>.</summary>
public sealed record RunCodeRequestBody
{
    /// <summary>The code, as one would type it into a notebook cell.</summary>
    public string? Code { get; init; }

    /// <summary><c>python</c> (the default), <c>javascript</c>, <c>typescript</c>, <c>bash</c>, or the language
    /// or name of a Jupyter kernel in the image. Ignored when <see cref="ContextId"/> is given.</summary>
    public string? Language { get; init; }

    /// <summary>The context to run in; the language's default context (started on first use) when null.</summary>
    public string? ContextId { get; init; }

    /// <summary>Interrupt the run after this many seconds (the context keeps its state); default 60.</summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>Environment variables for this run only: set before the code runs, restored after.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }
}

/// <summary>Body of <c>POST /v1/sandboxes/{id}/contexts</c>.</summary>
public sealed record CreateContextRequestBody
{
    /// <summary>As <see cref="RunCodeRequestBody.Language"/>; <c>python</c> when null.</summary>
    public string? Language { get; init; }

    /// <summary>Working directory; the user's home directory when null.</summary>
    public string? Cwd { get; init; }

    public IReadOnlyDictionary<string, string>? Env { get; init; }

    /// <summary>User name or uid the interpreter runs as; the sandbox's default user when null.</summary>
    public string? User { get; init; }
}
