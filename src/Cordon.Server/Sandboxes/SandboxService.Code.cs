using System.Text.RegularExpressions;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>Code contexts: stateful interpreters inside a sandbox, served by its agent.</summary>
public sealed partial class SandboxService
{
    /// <summary>A cell longer than this is a file in disguise: write it and run the file.</summary>
    private const int MaxCodeChars = 4 << 20;

    /// <summary>Starts code in a context; the caller streams its events (and disposing it interrupts the run).</summary>
    public async Task<RunningCode> StartCodeAsync(CallerIdentity caller, string id, CodeSpec spec, CancellationToken cancellationToken)
    {
        var request = ToAgentRequest(spec);
        var client = Agent(caller, id);
        return new RunningCode(await AgentFailures.CallAsync(() => client.StartCodeAsync(request, cancellationToken), ErrorCode.ContextNotFound));
    }

    /// <summary>Runs code to its end and gathers what it produced, with text output capped.</summary>
    public async Task<CodeRun> RunCodeAsync(CallerIdentity caller, string id, CodeSpec spec, CancellationToken cancellationToken)
    {
        await using var run = await StartCodeAsync(caller, id, spec, cancellationToken);
        using var collector = new CodeRunCollector(_options.MaxOutputChars, _outputBudget);
        await foreach (var e in run.ReadEventsAsync(cancellationToken))
        {
            collector.Add(e);
        }

        return collector.ToResult();
    }

    public async Task<ContextInfo> CreateContextAsync(CallerIdentity caller, string id, ContextSpec spec, CancellationToken cancellationToken)
    {
        ValidateLanguage(spec.Language);
        ValidateEnvironment(spec.Env, "env");
        ValidateUser(spec.User);
        if (spec.Cwd is not null && SandboxPaths.Validate(spec.Cwd) is { } cwdProblem)
        {
            throw CordonException.Invalid("cwd: " + cwdProblem);
        }

        var client = Agent(caller, id);
        var request = new CreateContextRequest { Language = spec.Language ?? "python", Cwd = spec.Cwd, Env = spec.Env, User = spec.User };
        return await AgentFailures.CallAsync(() => client.CreateContextAsync(request, cancellationToken), ErrorCode.ContextNotFound);
    }

    public async Task<IReadOnlyList<ContextInfo>> ListContextsAsync(CallerIdentity caller, string id, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        return (await AgentFailures.CallAsync(() => client.ListContextsAsync(cancellationToken))).Contexts;
    }

    public async Task<ContextInfo> GetContextAsync(CallerIdentity caller, string id, string contextId, CancellationToken cancellationToken)
        => (await ListContextsAsync(caller, id, cancellationToken)).FirstOrDefault(c => c.Id == contextId)
           ?? throw ContextNotFound(id, contextId);

    /// <summary>Replaces the context's interpreter with a fresh one; its state is lost.</summary>
    public Task<ContextInfo> RestartContextAsync(CallerIdentity caller, string id, string contextId, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidContextId(id, contextId);
        return AgentFailures.CallAsync(() => client.RestartContextAsync(valid, cancellationToken), ErrorCode.ContextNotFound);
    }

    public Task DeleteContextAsync(CallerIdentity caller, string id, string contextId, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidContextId(id, contextId);
        return AgentFailures.CallAsync(() => client.DeleteContextAsync(valid, cancellationToken), ErrorCode.ContextNotFound);
    }

    /// <summary>Interrupts the code running in the context; the context keeps its state.</summary>
    public Task InterruptContextAsync(CallerIdentity caller, string id, string contextId, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidContextId(id, contextId);
        return AgentFailures.CallAsync(() => client.InterruptContextAsync(valid, cancellationToken), ErrorCode.ContextNotFound);
    }

    private RunCodeRequest ToAgentRequest(CodeSpec spec)
    {
        Require(spec.Code is not null, "code is missing: give the code to run.");
        Require(spec.Code!.Length <= MaxCodeChars, $"code is longer than {MaxCodeChars >> 20} Mi characters: write it to a file and run the file.");
        ValidateLanguage(spec.Language);
        if (spec.ContextId is not null)
        {
            Require(ContextIdRegex().IsMatch(spec.ContextId), $"contextId '{spec.ContextId}' is not a context id.");
        }

        var timeout = spec.TimeoutSeconds ?? _options.DefaultCommandTimeoutSeconds;
        Require(timeout >= 1 && timeout <= _options.MaxTimeoutSeconds, $"timeoutSeconds must be between 1 and {_options.MaxTimeoutSeconds}; {timeout} was asked.");
        ValidateEnvironment(spec.Env, "env");
        return new RunCodeRequest { Code = spec.Code, Language = spec.Language, ContextId = spec.ContextId, TimeoutMs = timeout * 1000L, Env = spec.Env is { Count: > 0 } ? spec.Env : null };
    }

    private static void ValidateLanguage(string? language)
        => Require(language is null || LanguageRegex().IsMatch(language),
            $"language '{language}' is not a language name: use python, javascript, typescript, bash, or the name of a Jupyter kernel installed in the image.");

    private static string ValidContextId(string sandboxId, string contextId)
        => ContextIdRegex().IsMatch(contextId) ? contextId : throw ContextNotFound(sandboxId, contextId);

    private static CordonException ContextNotFound(string sandboxId, string contextId)
        => new(ErrorCode.ContextNotFound, $"There is no code context '{(contextId.Length <= 80 ? contextId : contextId[..80] + "…")}' in sandbox '{sandboxId}'.") { Subject = sandboxId };

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")]
    private static partial Regex LanguageRegex();

    [GeneratedRegex("^[a-z0-9][a-z0-9_.+-]{0,79}$")]
    private static partial Regex ContextIdRegex();

    /// <summary>Gathers a run's events into one result: text output capped (head and tail kept), results kept in
    /// order until they pass the cap too.</summary>
    private sealed class CodeRunCollector(long cap, OutputBudget budget) : IDisposable
    {
        private readonly OutputCap _stdout = new(cap, budget);
        private readonly OutputCap _stderr = new(cap, budget);
        private readonly List<CodeEvent> _results = [];
        private long _resultChars;
        private bool _resultsTruncated;
        private CodeError? _error;
        private CodeEvent? _end;

        public void Add(CodeEvent e)
        {
            switch (e.Type)
            {
                case CodeEventTypes.Stdout:
                    _stdout.Append(e.Text ?? "");
                    break;
                case CodeEventTypes.Stderr:
                    _stderr.Append(e.Text ?? "");
                    break;
                case CodeEventTypes.Result:
                    var size = e.Data?.Sum(d => (long)d.Value.GetRawText().Length) ?? 0;
                    if (_resultChars + size > cap * 4 || !budget.TryReserve(size))
                    {
                        _resultsTruncated = true;
                        break;
                    }

                    _resultChars += size;
                    _results.Add(e);
                    break;
                case CodeEventTypes.Error:
                    _error = new CodeError(e.Name ?? "Error", e.Value ?? "", e.Traceback ?? []);
                    break;
                case CodeEventTypes.End:
                    _end = e;
                    break;
            }
        }

        public void Dispose()
        {
            _stdout.Dispose();
            _stderr.Dispose();
            budget.Release(_resultChars);
        }

        public CodeRun ToResult()
        {
            const string how = "stream the run's events to get all of it";
            return new CodeRun
            {
                Status = _end is { } end ? RunningCode.StatusOf(end) : CodeRunStatus.Died,
                Stdout = _stdout.ToText(how),
                Stderr = _stderr.ToText(how),
                Results = _results,
                Error = _error,
                ExecutionCount = _end?.ExecutionCount,
                ContextId = _end?.ContextId,
                DurationMs = _end?.DurationMs ?? 0,
                OutputTruncated = _stdout.Truncated || _stderr.Truncated || _resultsTruncated,
            };
        }
    }
}
