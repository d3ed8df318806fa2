using System.Collections.Concurrent;
using Cordon.Runtime.Interop;

namespace Cordon.Runtime.Oci;

/// <summary>Prepares empty sandbox roots ahead of demand: an id range, a writable layer, the image layers (and a
/// built image's snapshots) id-mapped for that range and the overlay over them — everything of a sandbox that
/// depends only on its image and disk size. No process, namespace or cgroup exists until a create takes one; the sandbox itself
/// still starts from scratch. Taking a root is a rename (~0.1 ms) instead of ~3–5 ms of mounts.</summary>
/// <remarks>Roots are kept per (image layers, disk size) that creates have asked for, a few of each, for the
/// <see cref="MaxKinds"/> kinds used most recently: a kind no create asked for longer is dropped and its roots
/// released (each holds an id range, a loop device and mounts; a caller asking for many disk sizes must not
/// exhaust them). They are made by one thread at the lowest CPU priority, so preparing never competes with a
/// create in progress.</remarks>
internal sealed class RootPreparer : IDisposable
{
    private readonly string _directory;
    private readonly int _perKind;
    private readonly Func<string, IReadOnlyList<string>, IReadOnlyList<string>, long, UndoStack, int> _build;
    private readonly Action<string> _remove;
    private readonly Func<string, string> _snapshotDirectory;
    private readonly ConcurrentDictionary<string, Kind> _kinds = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wanted = new(0);
    private readonly ConcurrentQueue<string> _forgotten = new();
    private readonly Lock _idleLock = new();
    private TaskCompletionSource _idle = NewIdle(completed: true);
    private long _uses;
    private readonly Thread? _thread;
    private volatile bool _closed;

    /// <param name="build">Builds a root in a directory from image layers and snapshots; returns the host id of its range.</param>
    /// <param name="remove">Unmounts and removes a root directory and releases its range.</param>
    /// <param name="snapshotDirectory">Where a snapshot's files are (a root is taken only while they are the same).</param>
    public RootPreparer(string directory, int perKind, int maxKinds, Func<string, IReadOnlyList<string>, IReadOnlyList<string>, long, UndoStack, int> build, Action<string> remove, Func<string, string> snapshotDirectory)
    {
        _snapshotDirectory = snapshotDirectory;
        _directory = directory;
        _perKind = perKind;
        MaxKinds = Math.Max(1, maxKinds);
        _build = build;
        _remove = remove;
        if (perKind > 0)
        {
            _thread = new Thread(Run) { IsBackground = true, Name = "root-preparer" };
            _thread.Start();
        }
    }

    /// <summary>How many kinds (image, disk size) have roots kept ready at most.</summary>
    public int MaxKinds { get; }

    /// <summary>Roots ready now, of every kind.</summary>
    public int ReadyCount => _kinds.Values.Sum(k => k.Ready.Count);

    /// <summary>Completes once the preparer has nothing left to do for what was asked so far.</summary>
    internal Task WhenIdleAsync()
    {
        lock (_idleLock)
        {
            return _idle.Task;
        }
    }

    /// <summary>Takes a prepared root for these layers, snapshots and size, if one is ready and its image is unchanged.</summary>
    /// <returns>The prepared directory (to be renamed into place) and its range's host id, or null.</returns>
    public (string Directory, int HostId)? TryTake(IReadOnlyList<string> layers, IReadOnlyList<string> snapshots, long diskMiB)
    {
        var kind = _kinds.GetOrAdd(Key(layers, snapshots, diskMiB), _ => new Kind(layers, snapshots, diskMiB));
        kind.LastUsed = Interlocked.Increment(ref _uses);
        Wake();
        while (kind.Ready.TryDequeue(out var root))
        {
            // An image deleted (and perhaps imported again) since: its files are gone from this view.
            if (root.Layers.SequenceEqual(Identities(kind)))
            {
                return (root.Directory, root.HostId);
            }

            _remove(root.Directory);
        }

        return null;
    }

    /// <summary>Releases the roots kept with this snapshot in them (it is being deleted: they would hold its image, space
    /// and loop device, until their kind went out of use). On the preparer's thread, which alone changes the kinds
    /// while it may be building one.</summary>
    public void Forget(string snapshot)
    {
        if (_thread is null)
        {
            return; // nothing is ever prepared
        }

        _forgotten.Enqueue(snapshot);
        Wake();
    }

    /// <summary>Hands the preparer something to do; <see cref="WhenIdleAsync"/> waits for it again.</summary>
    private void Wake()
    {
        if (_perKind > 0)
        {
            lock (_idleLock)
            {
                if (_idle.Task.IsCompleted)
                {
                    _idle = NewIdle(completed: false);
                }
            }
        }

        _wanted.Release();
    }

    /// <summary>Removes prepared roots a crashed server left.</summary>
    public void RemoveLeftovers()
    {
        if (Directory.Exists(_directory))
        {
            foreach (var dir in Directory.EnumerateDirectories(_directory))
            {
                _remove(dir);
            }
        }
    }

    private void Run()
    {
        Syscalls.LowerThreadPriority();
        while (!_closed)
        {
            _wanted.Wait();
            DropForgotten();
            DropLeastRecentlyUsed();
            foreach (var kind in _kinds.Values)
            {
                while (!_closed && kind.Ready.Count < _perKind)
                {
                    var dir = Path.Combine(_directory, Guid.NewGuid().ToString("N"));
                    var undo = new UndoStack();
                    try
                    {
                        var identities = Identities(kind);
                        var hostId = _build(dir, kind.Layers, kind.Snapshots, kind.DiskMiB, undo);
                        kind.Ready.Enqueue(new Root(dir, hostId, identities));
                    }
                    catch (Exception ex) when (ex is IOException or SandboxRuntimeException or UnauthorizedAccessException)
                    {
                        undo.RollbackAsync().AsTask().GetAwaiter().GetResult();
                        break; // creates build their roots themselves meanwhile
                    }
                }
            }

            if (_wanted.CurrentCount == 0)
            {
                lock (_idleLock)
                {
                    _idle.TrySetResult();
                }
            }
        }
    }

    /// <summary>Drops the kinds used least recently beyond <see cref="MaxKinds"/>, releasing their roots.</summary>
    private void DropLeastRecentlyUsed()
    {
        while (_kinds.Count > MaxKinds && _kinds.MinBy(k => k.Value.LastUsed) is { Key: var key } && _kinds.TryRemove(key, out var dropped))
        {
            Release(dropped);
        }
    }

    /// <summary>Drops the kinds that stack a snapshot <see cref="Forget"/> was told of, releasing their roots.</summary>
    private void DropForgotten()
    {
        while (_forgotten.TryDequeue(out var snapshot))
        {
            foreach (var key in _kinds.Where(k => k.Value.Snapshots.Contains(snapshot)).Select(k => k.Key).ToList())
            {
                if (_kinds.TryRemove(key, out var dropped))
                {
                    Release(dropped);
                }
            }
        }
    }

    private void Release(Kind kind)
    {
        while (kind.Ready.TryDequeue(out var root))
        {
            _remove(root.Directory);
        }
    }

    private static TaskCompletionSource NewIdle(bool completed)
    {
        var idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (completed)
        {
            idle.SetResult();
        }

        return idle;
    }

    private static string Key(IReadOnlyList<string> layers, IReadOnlyList<string> snapshots, long diskMiB)
        => string.Join('\n', [.. layers, .. snapshots]) + "\n" + diskMiB;

    /// <summary>Device and inode of each layer's and snapshot's directory: a re-imported image has new ones, a deleted
    /// snapshot none.</summary>
    private List<(ulong, ulong)> Identities(Kind kind)
        => [.. kind.Layers.Concat(kind.Snapshots.Select(_snapshotDirectory)).Select(l => Syscalls.lstat(l, out var st) == 0 ? (st.Dev, st.Ino) : (0UL, 0UL))];

    public void Dispose()
    {
        _closed = true;
        _wanted.Release();
        _thread?.Join(TimeSpan.FromSeconds(30));
        foreach (var kind in _kinds.Values)
        {
            Release(kind);
        }

        RemoveLeftovers();
    }

    private sealed record Kind(IReadOnlyList<string> Layers, IReadOnlyList<string> Snapshots, long DiskMiB)
    {
        public ConcurrentQueue<Root> Ready { get; } = new();

        /// <summary>When a create last asked for this kind (a counter, not a clock).</summary>
        public long LastUsed { get; set; }
    }

    private sealed record Root(string Directory, int HostId, List<(ulong, ulong)> Layers);
}
