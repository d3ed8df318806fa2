using System.Text;
using System.Text.RegularExpressions;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Runtime.Agent;
using Cordon.Server.Auth;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>Code contexts: stateful interpreters inside a sandbox, served by its agent.</summary>
public sealed partial class SandboxService
{
    /// <summary>A cell longer than this is a file in disguise: write it and run the file.</summary>
    private const int MaxCodeChars = 4 << 20;

    private const string ContextNotFound = "context_not_found";

    /// <summary>Turns a REST/MCP code request into an agent request, validating every field.</summary>
    public RunCodeRequest BuildRunCodeRequest(RunCodeRequestBody body)
    {
        Require(body.Code is not null, "code is missing: give the code to run.");
        Require(body.Code!.Length <= MaxCodeChars, $"code is longer than {MaxCodeChars >> 20} Mi characters: write it to a file and run the file.");
        ValidateLanguage(body.Language);
        if (body.ContextId is not null)
        {
            Require(ContextIdRegex().IsMatch(body.ContextId), $"contextId '{body.ContextId}' is not a context id (see GET /v1/sandboxes/{{id}}/contexts).");
        }

        var timeout = body.TimeoutSeconds ?? _options.DefaultCommandTimeoutSeconds;
        Require(timeout >= 1 && timeout <= _options.MaxTimeoutSeconds, $"timeoutSeconds must be between 1 and {_options.MaxTimeoutSeconds}.");
        ValidateEnvironment(body.Env, "env");
        return new RunCodeRequest { Code = body.Code, Language = body.Language, ContextId = body.ContextId, TimeoutMs = timeout * 1000L, Env = body.Env is { Count: > 0 } ? body.Env : null };
    }

    /// <summary>Starts code in a context and returns the live run (the caller streams its events).</summary>
    public async Task<CodeRunSession> StartCodeAsync(CallerIdentity caller, string id, RunCodeRequest request, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        return await AgentCallAsync(() => client.StartCodeAsync(request, cancellationToken), ContextNotFound);
    }

    /// <summary>Runs code to its end and gathers what it produced, with text output capped.</summary>
    public async Task<CodeRunResult> RunCodeAsync(CallerIdentity caller, string id, RunCodeRequestBody body, CancellationToken cancellationToken)
    {
        var request = BuildRunCodeRequest(body);
        await using var run = await StartCodeAsync(caller, id, request, cancellationToken);
        var collector = new CodeRunCollector(_options.MaxExecOutputBytes);
        await AgentCallAsync(async () =>
        {
            await foreach (var e in run.ReadEventsAsync(cancellationToken))
            {
                collector.Add(e);
            }

            return true;
        });
        return collector.ToResult();
    }

    public async Task<ContextInfo> CreateContextAsync(CallerIdentity caller, string id, CreateContextRequestBody body, CancellationToken cancellationToken)
    {
        ValidateLanguage(body.Language);
        ValidateEnvironment(body.Env, "env");
        if (body.Cwd is not null && SandboxPaths.Validate(body.Cwd) is { } cwdProblem)
        {
            throw CordonException.Invalid("cwd: " + cwdProblem);
        }

        var client = Agent(caller, id);
        var request = new CreateContextRequest { Language = body.Language ?? "python", Cwd = body.Cwd, Env = body.Env, User = body.User };
        return await AgentCallAsync(() => client.CreateContextAsync(request, cancellationToken), ContextNotFound);
    }

    public async Task<IReadOnlyList<ContextInfo>> ListContextsAsync(CallerIdentity caller, string id, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        return (await AgentCallAsync(() => client.ListContextsAsync(cancellationToken))).Contexts;
    }

    public async Task<ContextInfo> GetContextAsync(CallerIdentity caller, string id, string contextId, CancellationToken cancellationToken)
        => (await ListContextsAsync(caller, id, cancellationToken)).FirstOrDefault(c => c.Id == contextId)
           ?? throw CordonException.NotFound(ContextNotFound, $"There is no code context '{contextId}' in sandbox '{id}': list them with GET /v1/sandboxes/{id}/contexts.");

    public Task<ContextInfo> RestartContextAsync(CallerIdentity caller, string id, string contextId, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        return AgentCallAsync(() => client.RestartContextAsync(ValidContextId(contextId), cancellationToken), ContextNotFound);
    }

    public Task DeleteContextAsync(CallerIdentity caller, string id, string contextId, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        return AgentCallAsync(async () =>
        {
            await client.DeleteContextAsync(ValidContextId(contextId), cancellationToken);
            return true;
        }, ContextNotFound);
    }

    public Task InterruptContextAsync(CallerIdentity caller, string id, string contextId, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        return AgentCallAsync(async () =>
        {
            await client.InterruptContextAsync(ValidContextId(contextId), cancellationToken);
            return true;
        }, ContextNotFound);
    }

    private static void ValidateLanguage(string? language)
        => Require(language is null || LanguageRegex().IsMatch(language),
            $"language '{language}' is not a language name: use python, javascript, typescript, bash, or the name of a Jupyter kernel installed in the image.");

    private static string ValidContextId(string contextId)
        => ContextIdRegex().IsMatch(contextId) ? contextId : throw CordonException.NotFound(ContextNotFound, $"'{contextId}' is not a code context id: list them with GET /v1/sandboxes/{{id}}/contexts.");

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")]
    private static partial Regex LanguageRegex();

    [GeneratedRegex("^[a-z0-9][a-z0-9_.+-]{0,79}$")]
    private static partial Regex ContextIdRegex();

    /// <summary>Gathers a run's events into one document: text output capped (head and tail kept), results
    /// kept in order until they pass the cap too.</summary>
    private sealed class CodeRunCollector(long cap)
    {
        private readonly CappedOutput _stdout = new(cap);
        private readonly CappedOutput _stderr = new(cap);
        private readonly List<CodeEvent> _results = [];
        private long _resultBytes;
        private bool _resultsTruncated;
        private CodeError? _error;
        private CodeEvent? _end;

        public void Add(CodeEvent e)
        {
            switch (e.Type)
            {
                case CodeEventTypes.Stdout:
                    _stdout.Append(Encoding.UTF8.GetBytes(e.Text ?? ""));
                    break;
                case CodeEventTypes.Stderr:
                    _stderr.Append(Encoding.UTF8.GetBytes(e.Text ?? ""));
                    break;
                case CodeEventTypes.Result:
                    var size = e.Data?.Sum(d => (long)d.Value.GetRawText().Length) ?? 0;
                    if (_resultBytes + size > cap * 4)
                    {
                        _resultsTruncated = true;
                        break;
                    }

                    _resultBytes += size;
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

        public CodeRunResult ToResult() => new()
        {
            Status = _end?.Status ?? CodeRunStatus.Died,
            Stdout = _stdout.ToText(),
            Stderr = _stderr.ToText(),
            Results = _results,
            Error = _error,
            ExecutionCount = _end?.ExecutionCount,
            ContextId = _end?.ContextId,
            DurationMs = _end?.DurationMs ?? 0,
            OutputTruncated = _stdout.Truncated || _stderr.Truncated || _resultsTruncated,
        };
    }
}
