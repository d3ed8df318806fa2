using Cordon.Protocol;
using Cordon.Runtime.Agent;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>A directory being watched in a sandbox; disposing it stops the watch.</summary>
public sealed class DirectoryWatch : IAsyncDisposable
{
    private readonly WatchSession _session;

    internal DirectoryWatch(WatchSession session, string sandboxId)
    {
        _session = session;
        SandboxId = sandboxId;
    }

    public string SandboxId { get; }

    /// <summary>The changes as they happen; ends when the watch ends with its sandbox.</summary>
    /// <exception cref="CordonException">The connection to the sandbox broke.</exception>
    public IAsyncEnumerable<WatchEvent> ReadEventsAsync(CancellationToken cancellationToken)
        => AgentFailures.ReadAsync(_session.ReadEventsAsync(cancellationToken), cancellationToken);

    public ValueTask DisposeAsync() => _session.DisposeAsync();
}
