using Cordon.Protocol;
using Cordon.Runtime.Agent;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>A directory being watched in a sandbox; disposing it stops the watch.</summary>
public sealed class DirectoryWatch : IAsyncDisposable
{
    private readonly WatchSession _session;
    private readonly IDisposable _slot;

    internal DirectoryWatch(WatchSession session, string sandboxId, IDisposable slot)
    {
        _session = session;
        SandboxId = sandboxId;
        _slot = slot;
    }

    public string SandboxId { get; }

    /// <summary>The changes as they happen; ends when the watch ends with its sandbox.</summary>
    /// <exception cref="CordonException">The connection to the sandbox broke.</exception>
    public IAsyncEnumerable<WatchEvent> ReadEventsAsync(CancellationToken cancellationToken)
        => AgentFailures.ReadAsync(_session.ReadEventsAsync(cancellationToken), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        _slot.Dispose();
        await _session.DisposeAsync();
    }
}
