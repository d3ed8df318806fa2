using Cordon.Agent.Interop;

namespace Cordon.Agent;

/// <summary>Gives memory back once the agent has had no request for a moment: the GC's free space and glibc's.</summary>
/// <remarks>
/// Most sandboxes idle most of the time, thousands to a host. An idle agent kept every page its start and its last
/// request touched (the GC's allocation area alone ~350 KiB, in every sandbox). An aggressive collection when the
/// requests stop (a millisecond for a heap this small) compacts what lives and decommits the rest; the next request
/// touches fresh pages again, which costs it page faults, not a collection. Ten seconds without a request count as
/// idle.
/// </remarks>
internal static class IdleTrim
{
    // Long enough that a conversation's commands, seconds apart, do not pay for a collection each.
    private const int IdleMilliseconds = 10_000;

    private static readonly Timer Timer = new(static _ => Trim(), null, Timeout.Infinite, Timeout.Infinite);

    /// <summary>A request started or ended: the trim waits for a quiet moment after it.</summary>
    public static void Touch() => Timer.Change(IdleMilliseconds, Timeout.Infinite);

    private static void Trim()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Libc.malloc_trim(0);
    }
}
