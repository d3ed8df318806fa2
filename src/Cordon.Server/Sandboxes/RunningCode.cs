using Cordon.Protocol;
using Cordon.Runtime.Agent;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>Code running in a context: its events in order, the last one <c>end</c>. Failures, also in the middle,
/// are <see cref="CordonException"/>s. Disposing it before the run ended interrupts the run (the context keeps its
/// state).</summary>
public sealed class RunningCode : IAsyncDisposable
{
    private readonly CodeRunSession _session;

    internal RunningCode(CodeRunSession session) => _session = session;

    /// <exception cref="CordonException">The sandbox or the connection to it failed.</exception>
    public IAsyncEnumerable<CodeEvent> ReadEventsAsync(CancellationToken cancellationToken)
        => AgentFailures.ReadAsync(_session.ReadEventsAsync(cancellationToken), cancellationToken);

    /// <summary>Interrupts the run (KeyboardInterrupt in Python); its end event follows.</summary>
    public Task InterruptAsync(CancellationToken cancellationToken)
        => AgentFailures.CallAsync(async () => await _session.InterruptAsync(cancellationToken));

    public ValueTask DisposeAsync() => _session.DisposeAsync();

    /// <summary>The status of an end event.</summary>
    public static CodeRunStatus StatusOf(CodeEvent end) => end.Status switch
    {
        Protocol.CodeRunStatus.Ok => CodeRunStatus.Ok,
        Protocol.CodeRunStatus.Error => CodeRunStatus.Error,
        Protocol.CodeRunStatus.Interrupted => CodeRunStatus.Interrupted,
        Protocol.CodeRunStatus.Timeout => CodeRunStatus.Timeout,
        _ => CodeRunStatus.Died,
    };
}
