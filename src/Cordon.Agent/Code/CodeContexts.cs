using Cordon.Protocol;

namespace Cordon.Agent.Code;

/// <summary>The sandbox's code contexts: the ones callers created, and one default context per language,
/// started on its first use (and started afresh on the next run if its interpreter died).</summary>
internal sealed class CodeContexts(CommandRunner launcher, SandboxEnvironment environment)
{
    /// <summary>Each context is a live interpreter holding memory; a runaway caller must not start hundreds.</summary>
    public const int MaxContexts = 32;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, CodeContext> _contexts = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _defaultsLock = new(1, 1);

    public async Task<ContextInfo> CreateAsync(CreateContextRequest request, CancellationToken cancellationToken)
    {
        var language = Language(request.Language);
        // Not RandomNumberGenerator: in this static binary it would dlopen the image's OpenSSL (see Interop/NoSharedLibraries.cs).
        var context = await StartAsync("ctx-" + Guid.NewGuid().ToString("N")[..12], language, request.Cwd, request.User, request.Env, cancellationToken);
        return context.Info();
    }

    public ContextListResponse List()
    {
        lock (_lock)
        {
            return new ContextListResponse([.. _contexts.Values.OrderBy(c => c.CreatedAt).Select(c => c.Info())]);
        }
    }

    public async Task DeleteAsync(string id)
    {
        CodeContext? context;
        lock (_lock)
        {
            _contexts.Remove(id, out context);
        }

        if (context is null)
        {
            throw NotFound(id);
        }

        await context.StopAsync();
    }

    public async Task<ContextInfo> RestartAsync(string id, CancellationToken cancellationToken)
    {
        var context = Find(id);
        await context.RestartAsync(cancellationToken);
        return context.Info();
    }

    public void Interrupt(string id) => Find(id).Interrupt();

    public async Task RunAsync(RunCodeRequest request, FrameStream frames, CancellationToken cancellationToken)
    {
        var context = request.ContextId is { } id ? Find(id) : await DefaultAsync(Language(request.Language), cancellationToken);
        await context.RunAsync(request.Code, request.Env, request.TimeoutMs, frames, cancellationToken);
    }

    /// <summary>Stops the default contexts started ahead (a sandbox claimed from a warm pool that was given an
    /// environment): each starts again on its next use, with the environment as it is now.</summary>
    public async Task StopDefaultsAsync()
    {
        List<CodeContext> running;
        lock (_lock)
        {
            running = [.. _contexts.Values.Where(c => c.Id.StartsWith("default-", StringComparison.Ordinal) && !c.IsDead)];
        }

        foreach (var context in running)
        {
            await context.StopAsync();
        }
    }

    /// <summary>The default context of a language, named <c>default-{language}</c>.</summary>
    private async Task<CodeContext> DefaultAsync(CodeLanguage language, CancellationToken cancellationToken)
    {
        var id = "default-" + language.Name;
        await _defaultsLock.WaitAsync(cancellationToken);
        try
        {
            lock (_lock)
            {
                if (_contexts.TryGetValue(id, out var existing) && !existing.IsDead)
                {
                    return existing;
                }
            }

            if (Lookup(id) is { } dead)
            {
                await dead.RestartAsync(cancellationToken);
                return dead;
            }

            return await StartAsync(id, language, cwd: null, user: null, env: null, cancellationToken);
        }
        finally
        {
            _defaultsLock.Release();
        }
    }

    private async Task<CodeContext> StartAsync(string id, CodeLanguage language, string? cwd, string? user, IReadOnlyDictionary<string, string>? env, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_contexts.Count >= MaxContexts)
            {
                throw new AgentException(AgentErrorCodes.Conflict, $"This sandbox already has {MaxContexts} code contexts: delete ones you no longer need first.");
            }
        }

        var identity = user is null ? environment.DefaultUser : UserIdentity.Resolve(user);
        if (identity is null)
        {
            throw new AgentException(AgentErrorCodes.InvalidArgument, $"The user '{user ?? environment.DefaultUserSpec}' does not exist in the sandbox's /etc/passwd: give an existing user name or a numeric uid.");
        }

        var directory = cwd ?? environment.WorkingDir ?? (Directory.Exists(identity.Home) ? identity.Home : "/");
        if (SandboxPaths.Validate(directory) is { } problem)
        {
            throw new AgentException(AgentErrorCodes.InvalidArgument, "Working directory: " + problem);
        }

        if (!Directory.Exists(directory))
        {
            throw new AgentException(AgentErrorCodes.NotFound, $"The working directory '{directory}' does not exist in the sandbox: create it first or choose another.");
        }

        var context = await CodeContext.StartAsync(id, language, directory, identity, env, launcher, environment, cancellationToken);
        lock (_lock)
        {
            _contexts[id] = context;
        }

        return context;
    }

    private static CodeLanguage Language(string? name) => CodeLanguage.Parse(name)
        ?? throw new AgentException(AgentErrorCodes.InvalidArgument, $"'{name}' is not a language name: use python, javascript, typescript, bash, or the name of a Jupyter kernel installed in the image.");

    private CodeContext? Lookup(string id)
    {
        lock (_lock)
        {
            return _contexts.GetValueOrDefault(id);
        }
    }

    private CodeContext Find(string id) => Lookup(id) ?? throw NotFound(id);

    private static AgentException NotFound(string id)
        => new(AgentErrorCodes.NotFound, $"There is no code context '{id}' in this sandbox: list the contexts, or leave the context out to use the language's default context.");
}
