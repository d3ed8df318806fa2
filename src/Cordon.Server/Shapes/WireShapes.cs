using Cordon.Protocol.Api;
using Cordon.Server.Sandboxes;

namespace Cordon.Server.Shapes;

/// <summary>The service's results in the shapes of Cordon's own wire (Cordon.Protocol.Api), shared by the REST API
/// and the MCP tools' structured results.</summary>
public static class WireShapes
{
    public static SandboxInfo ToInfo(this Sandbox sandbox) => new()
    {
        Id = sandbox.Id,
        State = WireNames.Of(sandbox.State),
        Image = sandbox.Image,
        Cpu = sandbox.Cpu,
        MemoryMiB = sandbox.MemoryMiB,
        DiskMiB = sandbox.DiskMiB,
        MaxProcesses = sandbox.MaxProcesses,
        Runtime = sandbox.Runtime,
        CreatedAt = sandbox.CreatedAt,
        ExpiresAt = sandbox.ExpiresAt,
        EndedAt = sandbox.EndedAt,
        EndReason = sandbox.EndReason is { } reason ? WireNames.Of(reason) : null,
        Metadata = sandbox.Metadata,
        PublicPorts = sandbox.PublicPorts,
        Network = sandbox.Network.ToWire(),
        Secrets = sandbox.Network.Secrets.ToDictionary(b => b.Env, b => b.Secret),
    };

    public static NetworkPolicy ToWire(this Network.EgressPolicy policy) => new()
    {
        Internet = policy.Internet,
        AllowOut = policy.AllowText,
        DenyOut = policy.DenyText,
        Headers = policy.Headers.Count == 0 ? null : policy.HeadersText,
    };

    public static CodeRunResult ToResult(this CodeRun run) => new()
    {
        Status = WireNames.Of(run.Status),
        Stdout = run.Stdout,
        Stderr = run.Stderr,
        Results = run.Results,
        Error = run.Error,
        ExecutionCount = run.ExecutionCount,
        ContextId = run.ContextId,
        DurationMs = run.DurationMs,
        OutputTruncated = run.OutputTruncated,
    };

    public static ExecResult ToResult(this CommandResult result) => new()
    {
        ExitCode = result.ExitCode,
        Signal = result.Signal,
        TimedOut = result.TimedOut,
        DurationMs = result.DurationMs,
        Stdout = result.Stdout,
        Stderr = result.Stderr,
        OutputTruncated = result.OutputTruncated,
    };
}
