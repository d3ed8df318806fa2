namespace Cordon.Server.Sandboxes;

/// <summary>The most characters of command and code output the server keeps at once, across every command and
/// run (<see cref="CordonOptions.MaxOutputMemoryMiB"/>): each <see cref="OutputCap"/> reserves from it as it
/// grows and returns what it held when released. A cap that finds the budget spent keeps what it has (its head
/// and a shorter tail) and says more was left out, so the server's memory stays flat whatever sandboxes print.</summary>
public sealed class OutputBudget(long chars)
{
    private long _used;

    /// <summary>Characters reserved now.</summary>
    public long Used => Interlocked.Read(ref _used);

    public long Limit { get; } = chars;

    /// <summary>A budget that never runs out (tests, and callers that bound themselves).</summary>
    public static OutputBudget Unlimited { get; } = new(long.MaxValue / 4);

    public bool TryReserve(long count)
    {
        while (true)
        {
            var used = Interlocked.Read(ref _used);
            if (used + count > Limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _used, used + count, used) == used)
            {
                return true;
            }
        }
    }

    public void Release(long count) => Interlocked.Add(ref _used, -count);
}
