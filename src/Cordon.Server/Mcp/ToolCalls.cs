using System.Text.Json;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Cordon.Server.Mcp;

/// <summary>What every tool does around its own work: who calls (from the HTTP request's API key), which sandbox a
/// call means (the one it names, else the session's), and the service's failures as tool errors.</summary>
public sealed class ToolCalls(SandboxService sandboxes, SessionSandboxes sessions, IHttpContextAccessor http, IOptions<CordonOptions> options)
{
    public const string SandboxIdHelp = "The sandbox to use; leave it out to use this session's sandbox (created on first use).";

    /// <summary>Goose (and others) name the agent session in every request's _meta.</summary>
    private const string AgentSessionMeta = "agent-session-id";

    /// <summary>The most characters of output one tool result carries.</summary>
    public int MaxChars => options.Value.McpMaxOutputChars;

    /// <summary>Runs a tool body; the service's failures become tool errors the model can act on. Anything else is a
    /// bug: logged by the SDK, reported as a generic failure.</summary>
    public async Task<CallToolResult> GuardAsync(Func<CallerIdentity, Task<CallToolResult>> body)
    {
        var context = http.HttpContext ?? throw new McpException("The MCP request carries no HTTP context; connect through /mcp.");
        try
        {
            return await body(ApiKeyMiddleware.Caller(context));
        }
        catch (CordonException ex)
        {
            return ToolErrors.From(ex);
        }
    }

    /// <summary>The sandbox a call names, or this session's (created, resumed or started again as needed); each use
    /// restarts its idle timer.</summary>
    public async Task<Sandbox> SandboxAsync(RequestContext<CallToolRequestParams> request, CallerIdentity caller, string? sandboxId, CancellationToken cancellationToken)
    {
        if (sandboxId is null)
        {
            return await sessions.ResolveAsync(caller, SessionKey(request, caller), cancellationToken);
        }

        return sandboxes.Get(caller, sandboxId);
    }

    /// <summary>The agent's session when the client names one in <c>_meta</c> (Goose does), else the MCP
    /// session, else (stateless clients) the API key.</summary>
    public static string SessionKey(RequestContext<CallToolRequestParams> request, CallerIdentity caller)
    {
        if (request.Params?.Meta is { } meta && meta.TryGetPropertyValue(AgentSessionMeta, out var value)
            && value?.GetValueKind() == JsonValueKind.String && value.GetValue<string>() is { Length: > 0 and <= 200 } agentSession)
        {
            return "agent:" + agentSession;
        }

        return request.Server.SessionId is { } mcpSession ? "mcp:" + mcpSession : "key:" + caller.KeyId;
    }
}
