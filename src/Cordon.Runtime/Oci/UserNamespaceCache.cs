using System.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Cordon.Runtime.Oci;

/// <summary>Holds one user namespace per id range, used only to id-map the image layers for that range, and the
/// namespaces that shift a snapshot's ids (those of the range it was taken in) to another range's.</summary>
/// <remarks>An open namespace descriptor keeps the namespace alive after its process has gone, so each
/// range pays for a helper process once (a few ms) and later sandboxes of the range pay nothing.</remarks>
internal sealed class UserNamespaceCache(IdRangeAllocator ranges) : IDisposable
{
    /// <summary>Shifts kept at most; the oldest goes first (a namespace costs a descriptor and a few KiB).</summary>
    public const int MaxShifts = 256;

    private readonly Lock _lock = new();
    private readonly Dictionary<int, SafeFileHandle> _namespaces = [];
    private readonly Dictionary<(long From, long To), SafeFileHandle> _shifts = [];
    private readonly Queue<(long From, long To)> _shiftOrder = new();

    public SafeFileHandle Get(int rangeIndex)
    {
        lock (_lock)
        {
            if (_namespaces.TryGetValue(rangeIndex, out var existing))
            {
                return existing;
            }

            var created = Create(0, ranges.HostIdOf(rangeIndex));
            _namespaces[rangeIndex] = created;
            return created;
        }
    }

    /// <summary>A namespace that maps the ids <paramref name="from"/>… to <paramref name="to"/>… (a range each), held
    /// until the lease is disposed: the cache may drop it meanwhile (it keeps at most <see cref="MaxShifts"/>), and the
    /// descriptor must stay open until the mount made with it exists.</summary>
    public Lease LeaseShift(long from, long to)
    {
        lock (_lock)
        {
            if (!_shifts.TryGetValue((from, to), out var handle))
            {
                // Dropped handles stay valid for the mounts made with them: an idmapped mount keeps its own reference.
                while (_shifts.Count >= MaxShifts && _shiftOrder.TryDequeue(out var oldest))
                {
                    if (_shifts.Remove(oldest, out var dropped))
                    {
                        dropped.Dispose();
                    }
                }

                handle = Create(from, to);
                _shifts[(from, to)] = handle;
                _shiftOrder.Enqueue((from, to));
            }

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
            foreach (var handle in _namespaces.Values)
            {
                handle.Dispose();
            }

            _namespaces.Clear();
            foreach (var handle in _shifts.Values)
            {
                handle.Dispose();
            }

            _shifts.Clear();
        }
    }
}
