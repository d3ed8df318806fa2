using Cordon.Server.Auth;
using Cordon.Server.Sandboxes;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Mcp;

/// <summary>The sandbox an agent session works in when a tool call names none: created on first use with the
/// server's defaults, found again by its metadata (so the binding survives a server restart), paused once the
/// session has been idle (<see cref="CordonOptions.McpSessionIdleSeconds"/>) and resumed by its next tool call, so
/// an agent that comes back hours later finds its work where it left it.</summary>
public sealed class SessionSandboxes(SandboxService sandboxes, IOptions<CordonOptions> options)
{
    /// <summary>The metadata key that marks a session's sandbox; its value is the session key.</summary>
    public const string MetadataKey = "cordon.mcp-session";

    /// <summary>Creation is serialised per session through one of a fixed set of gates (by hash), so the gates do
    /// not grow with the number of sessions ever seen.</summary>
    private readonly SemaphoreSlim[] _gates = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    /// <summary>The timers of a session's sandbox: paused when idle, woken by any request; its wall-clock timeout
    /// (<see cref="DefaultTimeoutSeconds"/> unless the agent asks for another) stops it, its files kept.</summary>
    public SandboxTimers Timers => new()
    {
        IdleTimeoutSeconds = options.Value.McpSessionIdleSeconds,
        OnIdle = TimerAction.Pause,
        OnTimeout = TimerAction.Stop,
        AutoResume = true,
    };

    /// <summary>The wall-clock life of a session's sandbox unless the agent asks for another.</summary>
    public int DefaultTimeoutSeconds => Math.Min(86400, options.Value.MaxTimeoutSeconds);

    /// <summary>The session's newest live sandbox, or null when it has none.</summary>
    public Sandbox? Find(CallerIdentity caller, string session)
        => sandboxes.List(caller, includeEnded: false, new Dictionary<string, string> { [MetadataKey] = session })
            .Where(s => s.State is SandboxState.Running or SandboxState.Paused or SandboxState.Stopped or SandboxState.Creating)
            .OrderByDescending(s => s.CreatedAt)
            .FirstOrDefault();

    /// <summary>The session's sandbox, created (or resumed, or started again) as needed.</summary>
    public async Task<Sandbox> ResolveAsync(CallerIdentity caller, string session, CancellationToken cancellationToken)
    {
        var gate = _gates[(int)((uint)StringComparer.Ordinal.GetHashCode(caller.KeyId + "\n" + session) % _gates.Length)];
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (Find(caller, session) is { } existing)
            {
                return existing.State is SandboxState.Paused or SandboxState.Stopped
                    ? await sandboxes.StartAsync(caller, existing.Id, "MCP", cancellationToken)
                    : existing;
            }

            return await sandboxes.CreateAsync(caller, new NewSandbox
            {
                TimeoutSeconds = DefaultTimeoutSeconds,
                Timers = Timers,
                Metadata = new Dictionary<string, string> { [MetadataKey] = session },
            }, cancellationToken);
        }
        finally
        {
            gate.Release();
        }
    }
}
