using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.AspNetCore;
using ModelContextProtocol.Protocol;

namespace Cordon.Server.Mcp;

/// <summary>MCP over Streamable HTTP at <c>/mcp</c>, on the official C# SDK, behind the same API keys as REST.</summary>
public static class McpEndpoint
{
    public const string Path = "/mcp";

    private const string Instructions =
        "Cordon runs code in isolated Linux sandboxes (Debian with Python 3 + numpy/pandas/matplotlib, Node.js, git). " +
        "You do not need to create a sandbox: every tool works in this session's sandbox, created on first use and kept " +
        "between calls (files, installed packages, interpreter state). Use run_code for Python/JavaScript/TypeScript/bash " +
        "cells whose variables persist (charts come back as images), run_command for shell commands (background=true for " +
        "servers and long jobs), and the file tools to read, write and edit files.";

    public static void AddCordonMcp(this IServiceCollection services, string version)
    {
        services.AddHttpContextAccessor();
        services.AddSingleton<SessionSandboxes>();
        services.AddSingleton<ToolCalls>();
        services.AddMcpServer(o =>
        {
            o.ServerInfo = new Implementation { Name = "cordon", Title = "Cordon sandboxes", Version = version };
            o.ServerInstructions = Instructions;
        })
        // Sessions for clients that open one (2025-06-18, 2025-11-25: Mcp-Session-Id, the GET stream);
        // 2026-07-28 clients, which have no sessions, are served per request on the same endpoint.
        .WithHttpTransport(o => o.SessionMode = HttpServerSessionMode.StatefulForInitializeClients)
        // tools/list keeps this order: sandboxes, commands, code, files.
        .WithTools<SandboxTools>(ToolResults.Json)
        .WithTools<CommandTools>(ToolResults.Json)
        .WithTools<CodeTools>(ToolResults.Json)
        .WithTools<FileTools>(ToolResults.Json)
        .WithRequestFilters(filters => filters.AddCallToolFilter(next => async (request, cancellationToken) =>
        {
            try
            {
                return ToolResults.ExplainGenericFailure(await next(request, cancellationToken), request.Params?.Name);
            }
            catch (Exception ex) when (ex is ArgumentException or System.Text.Json.JsonException or FormatException or InvalidCastException)
            {
                // Arguments that do not bind to the tool's parameters.
                return ToolResults.ExplainGenericFailure(ToolResults.Error("An error occurred invoking"), request.Params?.Name);
            }
        }));
    }

    public static void MapCordonMcp(this IEndpointRouteBuilder app) => app.MapMcp(Path).ExcludeFromDescription();
}
