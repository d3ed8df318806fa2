using System.Collections.Concurrent;
using System.Security.Cryptography;
using Cordon.Server.Auth;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>Commands whose life is not tied to one request (MCP's run_command, E2B's processes), by handle: their
/// output is logged (head and tail within the cap) so an agent can page through it with a cursor, and streamed
/// live to whoever subscribes; they take input and signals, and can be waited for. Owned by the service.</summary>
internal sealed class BackgroundCommands(long outputCap, OutputBudget budget)
{
    /// <summary>Handles of ended commands are forgotten after this long.</summary>
    private static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    private const int MaxHandles = 512;

    private readonly ConcurrentDictionary<string, CommandHandle> _handles = new(StringComparer.Ordinal);

    /// <param name="slot">Held while the command runs (its key's quota), given back when it ends.</param>
    public (CommandHandle Handle, CommandHandle.Subscription? Live) Start(CallerIdentity caller, RunningCommand command, bool subscribe, IDisposable slot)
    {
        ForgetEnded();
        var handle = new CommandHandle("cmd-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)), caller.KeyId, command, outputCap, budget, slot);
        var live = subscribe ? handle.Subscribe() : null;
        handle.Pump();
        _handles[handle.Id] = handle;
        return (handle, live);
    }

    public CommandHandle? FindByPid(CallerIdentity caller, string sandboxId, int pid)
        => _handles.Values.Where(h => h.SandboxId == sandboxId && h.Pid == pid && caller.CanSee(h.Owner)).MaxBy(h => h.StartedAt);

    public IEnumerable<CommandHandle> Running(CallerIdentity caller, string sandboxId)
        => _handles.Values.Where(h => h.SandboxId == sandboxId && h.Running && caller.CanSee(h.Owner));

    /// <summary>A background command of the sandbox still runs (so it is not idle).</summary>
    public bool HasRunning(string sandboxId) => _handles.Values.Any(h => h.SandboxId == sandboxId && h.Running);

    /// <exception cref="CordonException"><see cref="ErrorCode.CommandNotFound"/> when unknown, forgotten, or another tenant's.</exception>
    public CommandHandle Get(CallerIdentity caller, string id)
        => _handles.TryGetValue(id, out var handle) && caller.CanSee(handle.Owner)
            ? handle
            : throw new CordonException(ErrorCode.CommandNotFound, $"There is no command '{(id.Length <= 64 ? id : id[..64] + "…")}': handles are forgotten an hour after their command ended, or with their sandbox.") { Subject = id };

    /// <summary>Forgets the commands of a sandbox that ended.</summary>
    public void ForgetSandbox(string sandboxId)
    {
        foreach (var (id, handle) in _handles)
        {
            if (handle.SandboxId == sandboxId && _handles.TryRemove(id, out _))
            {
                handle.Forget();
            }
        }
    }

    /// <summary>Forgets commands that ended longer ago than the retention; and, oldest first, ended ones beyond the
    /// most handles kept or while their output holds more than half of the server's output budget.</summary>
    public void ForgetEnded()
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var (id, handle) in _handles)
        {
            if (handle.EndedAt is { } ended && now - ended > Retention && _handles.TryRemove(id, out _))
            {
                handle.Forget();
            }
        }

        while ((_handles.Count >= MaxHandles || budget.Used > budget.Limit / 2)
            && _handles.Values.Where(h => h.EndedAt is not null).MinBy(h => h.EndedAt) is { } oldest)
        {
            if (_handles.TryRemove(oldest.Id, out _))
            {
                oldest.Forget();
            }
        }
    }
}
