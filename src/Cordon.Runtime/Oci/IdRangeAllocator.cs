namespace Cordon.Runtime.Oci;

/// <summary>Gives each sandbox its own range of 65536 host uids and gids, so a process that escapes one
/// sandbox owns nothing of another's (its files, its processes) nor of the shared image.</summary>
/// <remarks>
/// Ranges are claimed host-wide, not only in this process: two servers on one host (two data directories) must not
/// hand out the same host ids. A claim is a file named by the range's first host id in a directory all servers
/// share (under /run: it ends with the boot, as do the sandboxes), holding the state directory of the server that
/// took it; it is created exclusively, removed on release, and taken over when the state directory it names is gone.
/// Sandbox network slots (<see cref="Network.HostNetwork"/>) are claimed the same way, with a step of 1.
/// </remarks>
internal sealed class IdRangeAllocator
{
    public const int RangeSize = 65536;

    private readonly Lock _lock = new();
    private readonly long _start;
    private readonly int _count;
    private readonly bool[] _used;
    private readonly string? _claims;
    private readonly string _owner;
    private readonly long _step;
    private readonly bool _rotate;
    private int _next;

    /// <param name="claims">The host-wide claims directory, or null to claim in this process only.</param>
    /// <param name="owner">This server's state directory, written into its claims.</param>
    /// <param name="step">What one index is worth: <see cref="RangeSize"/> host ids, or 1 for plain numbers.</param>
    /// <param name="rotate">Take the next free index after the last one taken, not the lowest: what the index names
    /// (a network interface) may take the kernel a moment to remove after its release.</param>
    public IdRangeAllocator(long start, int count, string? claims = null, string owner = "", long step = RangeSize, bool rotate = false)
    {
        _start = start;
        _step = step;
        _rotate = rotate;
        _count = count;
        _used = new bool[count];
        _claims = claims;
        _owner = owner;
        if (claims is not null)
        {
            Directory.CreateDirectory(claims, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    public long HostIdOf(int index) => _start + (index * _step);

    /// <summary>Takes the lowest range free here and on the host.</summary>
    /// <exception cref="SandboxRuntimeException">Every range is in use.</exception>
    public int Allocate()
    {
        lock (_lock)
        {
            for (var i = 0; i < _count; i++)
            {
                var index = (_next + i) % _count;
                if (!_used[index] && TryClaim(index))
                {
                    _used[index] = true;
                    _next = _rotate ? (index + 1) % _count : 0;
                    return index;
                }
            }

            throw new SandboxRuntimeException($"The host has reached its limit of {_count} sandboxes: destroy some, or raise Runtime:MaxSandboxes.");
        }
    }

    /// <summary>The indexes whose claims name this owner (left by an earlier run of the same server).</summary>
    public IReadOnlyList<int> Owned()
    {
        lock (_lock)
        {
            return [.. Enumerable.Range(0, _count).Where(i => ClaimPath(i) is { } claim && File.Exists(claim) && Owner(claim) == _owner)];
        }
    }

    /// <summary>Claims one given index if it is free here and on the host (ours from before, or its owner gone).</summary>
    public bool TryTake(int index)
    {
        lock (_lock)
        {
            if (index < 0 || index >= _count || _used[index] || !TryClaim(index))
            {
                return false;
            }

            _used[index] = true;
            return true;
        }
    }

    /// <summary>Marks a range as in use by a sandbox found at start, and claims it again.</summary>
    public void MarkUsed(int index)
    {
        lock (_lock)
        {
            if (index >= 0 && index < _used.Length)
            {
                _used[index] = true;
                if (ClaimPath(index) is { } claim)
                {
                    File.WriteAllText(claim, _owner);
                }
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
                if (ClaimPath(index) is { } claim && Owner(claim) == _owner)
                {
                    File.Delete(claim);
                }
            }
        }
    }

    /// <summary>Drops this server's claims on ranges none of its sandboxes use (it ended without releasing them).</summary>
    public void ReleaseStaleClaims()
    {
        if (_claims is null)
        {
            return;
        }

        lock (_lock)
        {
            for (var index = 0; index < _count; index++)
            {
                if (!_used[index] && ClaimPath(index) is { } claim && File.Exists(claim) && Owner(claim) == _owner)
                {
                    File.Delete(claim);
                }
            }
        }
    }

    private bool TryClaim(int index)
    {
        if (ClaimPath(index) is not { } claim)
        {
            return true;
        }

        // A claim another server releases between our attempt and our look at it is tried again.
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                using var file = new FileStream(claim, FileMode.CreateNew, FileAccess.Write);
                file.Write(System.Text.Encoding.UTF8.GetBytes(_owner));
                return true;
            }
            catch (IOException) when (Owner(claim) is { } owner)
            {
                // Ours from before a crash, or a server's whose state directory is gone: free to take.
                if (owner == _owner || (owner.Length > 0 && !Directory.Exists(owner)))
                {
                    File.WriteAllText(claim, _owner);
                    return true;
                }

                return false;
            }
            catch (IOException) when (!File.Exists(claim))
            {
            }
        }

        return false;
    }

    private string? ClaimPath(int index) => _claims is null ? null : Path.Combine(_claims, HostIdOf(index).ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static string? Owner(string claim)
    {
        try
        {
            return File.ReadAllText(claim);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }
}
