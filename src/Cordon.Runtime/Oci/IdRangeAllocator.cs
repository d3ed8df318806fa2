namespace Cordon.Runtime.Oci;

/// <summary>Gives each sandbox its own range of 65536 host uids and gids, so a process that escapes one
/// sandbox owns nothing of another's (its files, its processes) nor of the shared image.</summary>
internal sealed class IdRangeAllocator(long start, int count)
{
    public const int RangeSize = 65536;

    private readonly Lock _lock = new();
    private readonly bool[] _used = new bool[count];

    public long HostIdOf(int index) => start + ((long)index * RangeSize);

    /// <summary>Takes the lowest free range.</summary>
    /// <exception cref="SandboxRuntimeException">Every range is in use.</exception>
    public int Allocate()
    {
        lock (_lock)
        {
            var index = Array.IndexOf(_used, false);
            if (index < 0)
            {
                throw new SandboxRuntimeException($"The host has reached its limit of {count} sandboxes: destroy some, or raise Runtime:MaxSandboxes.");
            }

            _used[index] = true;
            return index;
        }
    }

    /// <summary>Marks a range as in use by a sandbox found at start.</summary>
    public void MarkUsed(int index)
    {
        lock (_lock)
        {
            if (index >= 0 && index < _used.Length)
            {
                _used[index] = true;
            }
        }
    }

    public void Release(int index)
    {
        lock (_lock)
        {
            if (index >= 0 && index < _used.Length)
            {
                _used[index] = false;
            }
        }
    }
}
