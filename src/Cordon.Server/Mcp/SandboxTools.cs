using System.ComponentModel;
using Cordon.Protocol.Api;
using Cordon.Server.Sandboxes;
using Cordon.Server.Shapes;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Cordon.Server.Mcp;

/// <summary>MCP tools for sandboxes themselves: create, list, destroy. A thin adapter over <see cref="SandboxService"/>.</summary>
[McpServerToolType]
public sealed class SandboxTools(SandboxService sandboxes, SessionSandboxes sessions, ToolCalls calls, IOptions<CordonOptions> options)
{
    [McpServerTool(Name = "create_sandbox", Title = "Create a sandbox", Destructive = false, Idempotent = false, ReadOnly = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(SandboxInfo))]
    [Description("Create a new isolated Linux sandbox (Debian with Python, Node.js, git) and make it this session's sandbox: later calls without sandboxId use it. Only needed for a fresh machine or non-default resources; every other tool creates the session's sandbox on first use.")]
    public Task<CallToolResult> CreateSandboxAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Image name; the default image when left out.")] string? image = null,
        [Description("CPU cores (e.g. 0.5, 2).")] double? cpu = null,
        [Description("Memory limit in MiB.")] long? memoryMiB = null,
        [Description("Seconds without tool calls before the sandbox is destroyed; the server's session idle time when left out.")] int? timeoutSeconds = null,
        [Description("Environment variables every command in the sandbox gets.")] Dictionary<string, string>? env = null,
        [Description("Reach the public internet (never the host, other sandboxes or private networks). The server's default when left out (usually true); false when only allowDomains should be reachable.")] bool? internet = null,
        [Description("Domains (pypi.org, *.github.com), addresses or CIDR ranges the sandbox may reach, optionally with :port; given alone, only these are reachable.")] string[]? allowDomains = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await sandboxes.CreateAsync(caller, new NewSandbox
            {
                Image = image,
                Cpu = cpu,
                MemoryMiB = memoryMiB,
                Env = env,
                Network = internet is null && allowDomains is null ? null
                    : sandboxes.ParseNetwork(internet ?? (allowDomains is null ? null : false), allowDomains, null),
                TimeoutSeconds = timeoutSeconds ?? options.Value.McpSessionIdleSeconds,
                Metadata = new Dictionary<string, string> { [SessionSandboxes.MetadataKey] = ToolCalls.SessionKey(request, caller) },
            }, cancellationToken);
            var network = sandbox.Network.Internet ? "internet" : sandbox.Network.Allow.Count > 0 ? "only " + string.Join(", ", sandbox.Network.AllowText) : "no network";
            return ToolResults.Ok($"Created sandbox {sandbox.Id} ({sandbox.Image}, {sandbox.Cpu} CPU, {sandbox.MemoryMiB} MiB, {network}); it is now this session's sandbox.", sandbox.ToInfo());
        });

    [McpServerTool(Name = "list_sandboxes", Title = "List sandboxes", ReadOnly = true, Idempotent = true, Destructive = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(SandboxListOutput))]
    [Description("List the live sandboxes this key can see, and which one is this session's.")]
    public Task<CallToolResult> ListSandboxesAsync(RequestContext<CallToolRequestParams> request)
        => calls.GuardAsync(caller =>
        {
            var session = sessions.Find(caller, ToolCalls.SessionKey(request, caller))?.Id;
            var list = sandboxes.List(caller, includeEnded: false, metadata: null).Select(s => s.ToInfo()).ToList();
            var text = list.Count == 0
                ? "No live sandboxes. Any tool creates this session's sandbox on first use."
                : string.Join('\n', list.Select(s => $"{s.Id}  {s.State}  image={s.Image}  expires={s.ExpiresAt:u}{(s.Id == session ? "  (this session's)" : "")}"));
            return Task.FromResult(ToolResults.Ok(text, new SandboxListOutput(list, session)));
        });

    [McpServerTool(Name = "destroy_sandbox", Title = "Destroy a sandbox", Destructive = true, Idempotent = true, ReadOnly = false, OpenWorld = false)]
    [Description("Destroy a sandbox and everything in it (files, processes, code contexts). Without sandboxId, destroys this session's sandbox; the next tool call starts a fresh one.")]
    public Task<CallToolResult> DestroySandboxAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("The sandbox to destroy; this session's sandbox when left out.")] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var id = sandboxId ?? sessions.Find(caller, ToolCalls.SessionKey(request, caller))?.Id;
            if (id is null)
            {
                return ToolResults.Ok("This session has no sandbox; nothing to destroy.", new { destroyed = (string?)null });
            }

            await sandboxes.DestroyAsync(caller, id, via: "MCP", cancellationToken);
            return ToolResults.Ok($"Destroyed sandbox {id}.", new { destroyed = id });
        });
}
