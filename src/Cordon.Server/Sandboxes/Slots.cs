namespace Cordon.Server.Sandboxes;

/// <summary>Counts things that are open now (watches, background commands) per owner and in all, and refuses one
/// more beyond either limit. Each slot taken is given back exactly once by disposing what <see cref="TryTake"/>
/// returned. Thread-safe.</summary>
internal sealed class Slots(int perOwner, int total)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, int> _byOwner = new(StringComparer.Ordinal);
    private int _total;

    public int PerOwner => perOwner;

    public int Total => total;

    /// <summary>Slots taken now, in all.</summary>
    public int Used
    {
        get
        {
            lock (_lock)
            {
                return _total;
            }
        }
    }

    /// <summary>Slots <paramref name="owner"/> holds now.</summary>
    public int UsedBy(string owner)
    {
        lock (_lock)
        {
            return _byOwner.GetValueOrDefault(owner);
        }
    }

    /// <summary>A slot for <paramref name="owner"/>, or null when it or everyone holds the most allowed.</summary>
    /// <param name="limit">The owner's own limit, instead of the one for every owner.</param>
    public IDisposable? TryTake(string owner, int? limit = null)
    {
        lock (_lock)
        {
            var held = _byOwner.GetValueOrDefault(owner);
            if (held >= (limit ?? perOwner) || _total >= total)
            {
                return null;
            }

            _byOwner[owner] = held + 1;
            _total++;
        }

        return new Slot(this, owner);
    }

    private void Release(string owner)
    {
        lock (_lock)
        {
            _total--;
            if (--_byOwner[owner] == 0)
            {
                _byOwner.Remove(owner);
            }
        }
    }

    private sealed class Slot(Slots slots, string owner) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                slots.Release(owner);
            }
        }
    }
}
