using System.ComponentModel;
using Cordon.Protocol.Api;
using Cordon.Server.Sandboxes;
using Cordon.Server.Shapes;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Cordon.Server.Mcp;

/// <summary>MCP tools for sandboxes themselves: create, list, snapshot, fork, resume, destroy. A thin adapter over <see cref="SandboxService"/>.</summary>
[McpServerToolType]
public sealed class SandboxTools(SandboxService sandboxes, SessionSandboxes sessions, ToolCalls calls)
{
    [McpServerTool(Name = "create_sandbox", Title = "Create a sandbox", Destructive = false, Idempotent = false, ReadOnly = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(SandboxInfo))]
    [Description("Create a new isolated Linux sandbox (Debian with Python, Node.js, git) and make it this session's sandbox: later calls without sandboxId use it. Only needed for a fresh machine or non-default resources; every other tool creates the session's sandbox on first use.")]
    public Task<CallToolResult> CreateSandboxAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Image name; the default image when left out.")] string? image = null,
        [Description("CPU cores (e.g. 0.5, 2).")] double? cpu = null,
        [Description("Memory limit in MiB.")] long? memoryMiB = null,
        [Description("Its wall-clock life in seconds (a day when left out); then it is stopped, its files kept. Idle, it is paused and the next call resumes it.")] int? timeoutSeconds = null,
        [Description("Seconds without a tool call, command or connection before it is paused; the server's session idle time when left out.")] int? idleTimeoutSeconds = null,
        [Description("Start from this snapshot (its id or name, from snapshot_sandbox) instead of an image.")] string? snapshot = null,
        [Description("Environment variables every command in the sandbox gets.")] Dictionary<string, string>? env = null,
        [Description("Reach the public internet (never the host, other sandboxes or private networks). The server's default when left out (usually true); false when only allowDomains should be reachable.")] bool? internet = null,
        [Description("Domains (pypi.org, *.github.com), addresses or CIDR ranges the sandbox may reach, optionally with :port; given alone, only these are reachable.")] string[]? allowDomains = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await sandboxes.CreateAsync(caller, new NewSandbox
            {
                Image = image,
                Snapshot = snapshot,
                Timers = sessions.Timers with { IdleTimeoutSeconds = idleTimeoutSeconds ?? sessions.Timers.IdleTimeoutSeconds },
                Cpu = cpu,
                MemoryMiB = memoryMiB,
                Env = env,
                Network = internet is null && allowDomains is null ? null
                    : sandboxes.ParseNetwork(internet ?? (allowDomains is null ? null : false), allowDomains, null),
                TimeoutSeconds = timeoutSeconds ?? sessions.DefaultTimeoutSeconds,
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

    [McpServerTool(Name = "snapshot_sandbox", Title = "Snapshot a sandbox", Destructive = false, Idempotent = false, ReadOnly = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(SnapshotInfo))]
    [Description("Save the sandbox's whole file system (installed packages, cloned repositories, build output) as a named snapshot, in a few ms, while it keeps running. create_sandbox with snapshot=<name> starts new sandboxes from it, today or days later.")]
    public Task<CallToolResult> SnapshotSandboxAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("A name for the snapshot (letters, digits, '-', '_', '.'); made up when left out.")] string? name = null,
        [Description("The sandbox to snapshot; this session's sandbox when left out.")] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            var snapshot = await sandboxes.SnapshotAsync(caller, sandbox.Id, name, "MCP", cancellationToken);
            return ToolResults.Ok($"Saved sandbox {sandbox.Id} as snapshot '{snapshot.Name}' ({snapshot.Id}); create_sandbox with snapshot=\"{snapshot.Name}\" starts from it.",
                snapshot.ToInfo(sandboxes.SnapshotUsers(snapshot.Id)));
        });

    [McpServerTool(Name = "fork_sandbox", Title = "Fork a sandbox", Destructive = false, Idempotent = false, ReadOnly = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(SandboxListOutput))]
    [Description("Make copies of a sandbox as its files are now (processes are not copied), to try several approaches from the same starting point; each copy is independent and is addressed by its sandboxId.")]
    public Task<CallToolResult> ForkSandboxAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("How many copies (1-20).")] int count = 1,
        [Description("The sandbox to fork; this session's sandbox when left out.")] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            var forks = await sandboxes.ForkAsync(caller, sandbox.Id, count, timeoutSeconds: null, "MCP", cancellationToken);
            var made = forks.Where(f => f.Sandbox is not null).Select(f => f.Sandbox!.ToInfo()).ToList();
            var failed = forks.Where(f => f.Error is not null).Select(f => f.Error!.Message).Distinct().ToList();
            var text = $"Forked {sandbox.Id} into {made.Count} sandbox(es): {string.Join(", ", made.Select(s => s.Id))}. Pass a sandboxId to address one."
                + (failed.Count > 0 ? " Not made: " + string.Join(" ", failed) : "");
            return ToolResults.Ok(text, new SandboxListOutput(made, null));
        });

    [McpServerTool(Name = "list_snapshots", Title = "List snapshots", ReadOnly = true, Idempotent = true, Destructive = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(SnapshotListOutput))]
    [Description("List the snapshots this key has saved (snapshot_sandbox), newest last.")]
    public Task<CallToolResult> ListSnapshotsAsync()
        => calls.GuardAsync(caller =>
        {
            var list = sandboxes.WithUsers(sandboxes.ListSnapshots(caller, sandboxId: null)).Select(s => s.Snapshot.ToInfo(s.Users)).ToList();
            var text = list.Count == 0
                ? "No snapshots yet; snapshot_sandbox saves one."
                : string.Join('\n', list.Select(s => $"{s.Name}  {s.Id}  from {s.SandboxId}  {s.CreatedAt:u}"));
            return Task.FromResult(ToolResults.Ok(text, new SnapshotListOutput(list)));
        });

    [McpServerTool(Name = "resume_sandbox", Title = "Resume a sandbox", Destructive = false, Idempotent = true, ReadOnly = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(SandboxInfo))]
    [Description("Resume a paused sandbox, or start a stopped one again in the files it kept. Calls on this session's sandbox do this by themselves.")]
    public Task<CallToolResult> ResumeSandboxAsync(
        [Description("The sandbox to resume.")] string sandboxId,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await sandboxes.StartAsync(caller, sandboxId, "MCP", cancellationToken);
            return ToolResults.Ok($"Sandbox {sandbox.Id} is {WireNames.Of(sandbox.State)}.", sandbox.ToInfo());
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
