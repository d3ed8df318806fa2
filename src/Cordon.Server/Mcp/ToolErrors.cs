using Cordon.Server.Errors;
using ModelContextProtocol.Protocol;

namespace Cordon.Server.Mcp;

/// <summary>MCP's one mapping of the service's failures: a tool error (<c>isError</c>) with the service's message
/// and, where MCP has its own way to act on it, the tool to call.</summary>
internal static class ToolErrors
{
    public static CallToolResult From(CordonException ex)
    {
        var hint = ex.Code switch
        {
            ErrorCode.SandboxNotFound => "Call list_sandboxes to see the live ones, or leave sandboxId out to use this session's sandbox.",
            ErrorCode.SandboxEnded => "Leave sandboxId out to use this session's sandbox, or call create_sandbox.",
            ErrorCode.SandboxPaused or ErrorCode.SandboxStopped => "Call resume_sandbox with its id, or use another sandbox.",
            ErrorCode.QuotaExceeded => "list_sandboxes shows yours; destroy_sandbox ends one.",
            ErrorCode.HostDiskFull => "Ask for a smaller diskMiB, or destroy sandboxes you no longer need.",
            ErrorCode.ImageNotFound => "Leave image out to use the default image.",
            ErrorCode.FileNotFound => "Use list_files to see what exists.",
            ErrorCode.CommandNotFound => "Handles come from run_command with background=true, or from a run_command result whose output was capped.",
            ErrorCode.CommandEnded => "Read its output and exit code with read_command_output or wait_command.",
            ErrorCode.ContextNotFound => "Leave contextId out to use the language's default context.",
            _ => null,
        };
        return ToolResults.Error(hint is null ? ex.Message : ex.Message + " " + hint);
    }
}
