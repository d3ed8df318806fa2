using System.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Cordon.Runtime.Oci;

/// <summary>User namespaces that id-map mounts: one per id range (the image layers and volumes seen with a sandbox's
/// ids) and the shifts of a snapshot's ids (those of the range it was taken in) to another range's.</summary>
/// <remarks>An open namespace descriptor keeps the namespace alive after its process has gone, so a mapping used again
/// (a range reused by the next sandbox) pays for its helper process once. The most recently used are kept, a bounded
/// number: every descriptor the server holds is copied and closed again by each program it starts (crun on every
/// create and destroy), so one per live sandbox would make those grow with the sandboxes.</remarks>
internal sealed class UserNamespaceCache(IdRangeAllocator ranges) : IDisposable
{
    /// <summary>Mappings kept at most; the least recently used goes first (a namespace costs a descriptor and a few KiB).</summary>
    public const int MaxKept = 128;

    private readonly Lock _lock = new();
    private readonly Dictionary<(long From, long To), LinkedListNode<((long From, long To) Key, SafeFileHandle Handle)>> _kept = [];
    private readonly LinkedList<((long From, long To) Key, SafeFileHandle Handle)> _order = new();

    /// <summary>The namespace mapping a range's sandbox ids (0…) to its host ids, held until the lease is disposed.</summary>
    public Lease LeaseRange(int rangeIndex) => LeaseShift(0, ranges.HostIdOf(rangeIndex));

    /// <summary>A namespace that maps the ids <paramref name="from"/>… to <paramref name="to"/>… (a range each), held
    /// until the lease is disposed: the cache may drop it meanwhile (it keeps at most <see cref="MaxKept"/>), and the
    /// descriptor must stay open until the mount made with it exists.</summary>
    public Lease LeaseShift(long from, long to)
    {
        lock (_lock)
        {
            if (_kept.TryGetValue((from, to), out var node))
            {
                _order.Remove(node);
                _order.AddLast(node);
            }
            else
            {
                // Dropped handles stay valid for the mounts made with them: an idmapped mount keeps its own reference.
                while (_kept.Count >= MaxKept && _order.First is { } oldest)
                {
                    _order.RemoveFirst();
                    _kept.Remove(oldest.Value.Key);
                    oldest.Value.Handle.Dispose();
                }

                node = _order.AddLast(((from, to), Create(from, to)));
                _kept[(from, to)] = node;
            }

            var handle = node.Value.Handle;
            var added = false;
            handle.DangerousAddRef(ref added);
            return new Lease(handle);
        }
    }

    /// <summary>A namespace descriptor kept open (though the cache drop it) until disposed.</summary>
    public readonly struct Lease(SafeFileHandle handle) : IDisposable
    {
        public int Fd => (int)handle.DangerousGetHandle();

        public void Dispose() => handle.DangerousRelease();
    }

    private static SafeFileHandle Create(long inner, long hostId)
    {
        var info = new ProcessStartInfo("/usr/bin/unshare")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { "--user", "--", "/bin/sleep", "60" })
        {
            info.ArgumentList.Add(arg);
        }

        using var helper = Process.Start(info) ?? throw new SandboxRuntimeException("Could not start the user-namespace helper.");
        try
        {
            var own = new FileInfo("/proc/self/ns/user").LinkTarget;
            var nsPath = $"/proc/{helper.Id}/ns/user";
            var deadline = Stopwatch.StartNew();
            while (new FileInfo(nsPath).LinkTarget == own)
            {
                if (deadline.Elapsed > TimeSpan.FromSeconds(5) || helper.HasExited)
                {
                    throw new SandboxRuntimeException("The host refused to create a user namespace.", "unshare --user did not enter a new user namespace");
                }

                Thread.Sleep(1);
            }

            WriteMap($"/proc/{helper.Id}/uid_map", inner, hostId);
            WriteMap($"/proc/{helper.Id}/gid_map", inner, hostId);
            return File.OpenHandle(nsPath, FileMode.Open, FileAccess.Read);
        }
        finally
        {
            helper.Kill();
            helper.WaitForExit();
        }
    }

    /// <summary>A map file takes exactly one write at offset 0 on an existing file (no O_CREAT/O_TRUNC).</summary>
    private static void WriteMap(string path, long inner, long hostId)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        stream.Write(System.Text.Encoding.ASCII.GetBytes($"{inner} {hostId} {IdRangeAllocator.RangeSize}\n"));
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var (_, handle) in _order)
            {
                handle.Dispose();
            }

            _order.Clear();
            _kept.Clear();
        }
    }
}
