using Cordon.Server.Auth;
using Cordon.Server.Sandboxes;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Mcp;

/// <summary>The sandbox an agent session works in when a tool call names none: created on first use with the
/// server's defaults, found again by its metadata (so the binding survives a server restart), kept alive
/// while the session calls tools and destroyed by its timeout once the session has been idle.</summary>
public sealed class SessionSandboxes(SandboxService sandboxes, IOptions<CordonOptions> options)
{
    /// <summary>The metadata key that marks a session's sandbox; its value is the session key.</summary>
    public const string MetadataKey = "cordon.mcp-session";

    /// <summary>Creation is serialised per session through one of a fixed set of gates (by hash), so the gates do
    /// not grow with the number of sessions ever seen.</summary>
    private readonly SemaphoreSlim[] _gates = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    private int IdleSeconds => options.Value.McpSessionIdleSeconds;

    /// <summary>The session's newest live sandbox, or null when it has none.</summary>
    public Sandbox? Find(CallerIdentity caller, string session)
        => sandboxes.List(caller, includeEnded: false, new Dictionary<string, string> { [MetadataKey] = session })
            .Where(s => s.State is SandboxState.Running or SandboxState.Paused or SandboxState.Creating)
            .OrderByDescending(s => s.CreatedAt)
            .FirstOrDefault();

    /// <summary>The session's sandbox, created (or resumed) as needed; each use restarts its idle timeout.</summary>
    public async Task<Sandbox> ResolveAsync(CallerIdentity caller, string session, CancellationToken cancellationToken)
    {
        var gate = _gates[(int)((uint)StringComparer.Ordinal.GetHashCode(caller.KeyId + "\n" + session) % _gates.Length)];
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (Find(caller, session) is { } existing)
            {
                if (existing.State == SandboxState.Paused)
                {
                    existing = await sandboxes.ResumeAsync(caller, existing.Id, cancellationToken);
                }

                return Touch(caller, existing);
            }

            return await sandboxes.CreateAsync(caller, new NewSandbox
            {
                TimeoutSeconds = IdleSeconds,
                Metadata = new Dictionary<string, string> { [MetadataKey] = session },
            }, cancellationToken);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Restarts the idle timeout of a session's sandbox (never shortens a longer one the agent set).</summary>
    public Sandbox Touch(CallerIdentity caller, Sandbox sandbox)
    {
        // Extended once half the idle time has passed, not on every call: each extension is an event in its history.
        var halfway = DateTimeOffset.UtcNow.AddSeconds(IdleSeconds / 2.0);
        return sandbox.State == SandboxState.Running && sandbox.Metadata.ContainsKey(MetadataKey) && sandbox.ExpiresAt < halfway
            ? sandboxes.SetTimeout(caller, sandbox.Id, IdleSeconds)
            : sandbox;
    }
}
