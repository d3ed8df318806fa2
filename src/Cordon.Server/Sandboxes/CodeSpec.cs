namespace Cordon.Server.Sandboxes;

/// <summary>Code to run in a context, as every interface asks for it.</summary>
public sealed record CodeSpec
{
    public required string Code { get; init; }

    /// <summary>python (default), javascript, typescript, bash, or an installed Jupyter kernel's name; ignored with
    /// <see cref="ContextId"/>.</summary>
    public string? Language { get; init; }

    /// <summary>The context to run in; the language's default context when null.</summary>
    public string? ContextId { get; init; }

    /// <summary>Interrupt the run after this long; the server's default command timeout when null.</summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>Variables set for this run only.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }
}

/// <summary>A context to start.</summary>
public sealed record ContextSpec
{
    public string? Language { get; init; }

    public string? Cwd { get; init; }

    public IReadOnlyDictionary<string, string>? Env { get; init; }

    public string? User { get; init; }
}
