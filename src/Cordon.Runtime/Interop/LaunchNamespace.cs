using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Cordon.Runtime.Interop;

/// <summary>A mount namespace that holds none of the sandboxes' mounts, where the container runtime is started.</summary>
/// <remarks>
/// A new mount namespace starts as a copy of its creator's mount table, and each sandbox adds two mounts to the
/// host's (its overlay root and its writable layer). Started from the host's namespace, the runtime's clone copied
/// every sandbox's mounts and its pivot_root dropped them again: with 2,000 sandboxes live that was 4,000 mounts
/// per start, and create → first command went from 26 to 108 ms. Started here, it copies the host's table as it
/// was before any sandbox (the layer pool and lxcfs included) plus the mounts of the one sandbox starting: clones
/// of the host's, attached for the launch and detached once the runtime returned.
/// <para>One thread of the server lives in this namespace (a thread may have a mount namespace of its own once it
/// no longer shares its file-system attributes with the others); programs it spawns start in it. Every other
/// thread stays in the host's namespace, where the sandboxes' mounts are made and stay.</para>
/// </remarks>
internal sealed partial class LaunchNamespace : IDisposable
{
    private const int CLONE_FS = 0x200;
    private const int CLONE_NEWNS = 0x20000;

    private readonly BlockingCollection<Action<string?>> _work = [];
    private readonly string _stateDirectory;
    private readonly Func<IReadOnlyList<string>> _baseMounts;
    private readonly SafeHandle _host;
    private readonly Thread _thread;
    private Dictionary<string, ulong>? _seen;

    /// <param name="stateDirectory">The sandboxes' directory: nothing below it is kept in the namespace.</param>
    /// <param name="baseMounts">Mounts the namespace must see as the host does now (the layer pool, lxcfs): when
    /// one of them changes on the host, the namespace is made again.</param>
    public LaunchNamespace(string stateDirectory, Func<IReadOnlyList<string>> baseMounts)
    {
        _stateDirectory = Path.GetFullPath(stateDirectory).TrimEnd('/');
        _baseMounts = baseMounts;
        _host = File.OpenHandle("/proc/thread-self/ns/mnt", FileMode.Open, FileAccess.Read);
        _thread = new Thread(Serve) { IsBackground = true, Name = "cordon-launch-ns" };
        _thread.Start();
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unshare(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    /// <summary>Attaches clones of the host's mounts at <paramref name="paths"/> (those that are mounts) in the
    /// namespace, then runs <paramref name="spawn"/> on its thread, so the program it starts begins there.</summary>
    /// <returns>What <paramref name="spawn"/> returned (a pid). Call <see cref="DetachAsync"/> with the same paths once
    /// the program is done with them.</returns>
    /// <exception cref="IOException">A mount could not be cloned or attached.</exception>
    public Task<int> LaunchAsync(IReadOnlyList<string> paths, Func<int> spawn)
    {
        // Cloned here, on a thread in the host's namespace, where the paths are mounts; attached over there. The
        // base mounts are looked at here too: as the host sees them now.
        var seen = _baseMounts().ToDictionary(p => p, Device, StringComparer.Ordinal);
        var clones = new List<(int Fd, string Path)>();
        try
        {
            foreach (var path in paths.Where(Syscalls.IsMountPoint))
            {
                var fd = Syscalls.OpenTree(path, Syscalls.OPEN_TREE_CLONE | Syscalls.OPEN_TREE_CLOEXEC);
                if (fd < 0)
                {
                    throw new IOException($"open_tree({path}): {Syscalls.LastError()}");
                }

                clones.Add((fd, path));
            }
        }
        catch
        {
            Close(clones);
            throw;
        }

        return RunAsync(() =>
        {
            try
            {
                Refresh(seen);
                foreach (var (fd, path) in clones)
                {
                    Syscalls.umount2(path, Syscalls.MNT_DETACH); // a leftover of an earlier launch, if any
                    if (Syscalls.MoveMount(fd, path) != 0)
                    {
                        var error = Syscalls.LastError();
                        Detach(clones.Select(c => c.Path));
                        throw new IOException($"move_mount to {path} in the launch namespace: {error}");
                    }
                }

                LastLaunch = new FileInfo("/proc/thread-self/ns/mnt").LinkTarget;
                return spawn();
            }
            finally
            {
                Close(clones);
            }
        });
    }

    /// <summary>Detaches what <see cref="LaunchAsync"/> attached at <paramref name="paths"/>.</summary>
    public Task DetachAsync(IReadOnlyList<string> paths) => RunAsync(() =>
    {
        Detach(paths);
        return 0;
    });

    private static void Detach(IEnumerable<string> paths)
    {
        foreach (var path in paths)
        {
            Syscalls.umount2(path, Syscalls.MNT_DETACH);
        }
    }

    /// <summary>The mount namespace (<c>mnt:[inode]</c>) the last launch started in (for tests).</summary>
    public string? LastLaunch { get; private set; }

    /// <summary>The namespace's mounts now, as (mount point, file-system type) (for tests of what it holds).</summary>
    public Task<List<(string Point, string Type)>> MountsAsync()
        => RunAsync(() => File.ReadLines("/proc/thread-self/mountinfo").Select(Mount.Parse).OfType<Mount>().Select(m => (m.Point, m.Type)).ToList());

    private Task<T> RunAsync<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(failure =>
        {
            try
            {
                done.SetResult(failure is null ? work() : throw new IOException(failure));
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        });
        return done.Task;
    }

    private void Serve()
    {
        // Its own file-system attributes first: a thread that shares them may not change mount namespace.
        var failure = unshare(CLONE_FS) == 0 ? null : $"unshare(CLONE_FS): {Syscalls.LastError()}";
        foreach (var work in _work.GetConsumingEnumerable())
        {
            work(failure);
        }
    }

    /// <summary>Makes the namespace (again, when a base mount is another on the host since): a copy of the host's,
    /// private, without anything below the sandboxes' directory but that directory's own mount.</summary>
    private void Refresh(Dictionary<string, ulong> seen)
    {
        if (_seen is not null && seen.All(s => _seen.TryGetValue(s.Key, out var device) && device == s.Value))
        {
            return;
        }

        if (_seen is not null && setns((int)_host.DangerousGetHandle(), CLONE_NEWNS) != 0)
        {
            throw new IOException($"setns to the host's mount namespace: {Syscalls.LastError()}");
        }

        if (unshare(CLONE_NEWNS) != 0)
        {
            throw new IOException($"unshare(CLONE_NEWNS): {Syscalls.LastError()}");
        }

        // Nothing made here reaches the host, and nothing the host makes later arrives here.
        if (Syscalls.mount(null, "/", null, Syscalls.MS_REC | Syscalls.MS_PRIVATE, null) != 0)
        {
            throw new IOException($"making the launch namespace private: {Syscalls.LastError()}");
        }

        // Out go this server's sandboxes (everything below its directory but the directory's own mount), and what
        // any other sandbox or container on the host looks like (overlays, loop-device file systems, kept
        // namespaces): other servers' on the same host, Docker's. The runtime needs none of it.
        var prefix = _stateDirectory + "/";
        var keep = new HashSet<string>(seen.Keys.Select(k => k.TrimEnd('/')), StringComparer.Ordinal);
        var below = File.ReadLines("/proc/thread-self/mountinfo")
            .Select(Mount.Parse)
            .OfType<Mount>()
            .Where(m => !keep.Contains(m.Point) && !keep.Append(_stateDirectory).Any(k => IsAncestor(m.Point, k))
                && (m.Point.StartsWith(prefix, StringComparison.Ordinal) || m.Type is "overlay" or "nsfs" || m.Source.StartsWith("/dev/loop", StringComparison.Ordinal)))
            .Select(m => m.Point)
            .Distinct()
            .OrderByDescending(m => m.Length)
            .ToList();
        foreach (var mount in below)
        {
            Syscalls.umount2(mount, Syscalls.MNT_DETACH);
        }

        _seen = seen;
    }

    /// <summary>A line of mountinfo: where, what type, from what.</summary>
    private sealed record Mount(string Point, string Type, string Source)
    {
        public static Mount? Parse(string line)
        {
            var fields = line.Split(' ');
            var separator = Array.IndexOf(fields, "-");
            return fields.Length > 4 && separator > 4 && fields.Length > separator + 2
                ? new Mount(fields[4].Replace("\\040", " ", StringComparison.Ordinal), fields[separator + 1], fields[separator + 2])
                : null;
        }
    }

    /// <summary>Whether <paramref name="mount"/> is <paramref name="path"/> or above it (the root is above all).</summary>
    private static bool IsAncestor(string mount, string path)
        => mount == "/" || path == mount || path.StartsWith(mount + "/", StringComparison.Ordinal);

    private static ulong Device(string path) => Syscalls.lstat(path, out var stat) == 0 ? stat.Dev : 0;

    private static void Close(List<(int Fd, string Path)> clones)
    {
        foreach (var (fd, _) in clones)
        {
            Syscalls.close(fd);
        }

        clones.Clear();
    }

    public void Dispose()
    {
        _work.CompleteAdding();
        _host.Dispose();
    }
}
