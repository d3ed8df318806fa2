using System.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Cordon.Runtime.Oci;

/// <summary>Holds one user namespace per id range, used only to id-map the image layers for that range.</summary>
/// <remarks>An open namespace descriptor keeps the namespace alive after its process has gone, so each
/// range pays for a helper process once (a few ms) and later sandboxes of the range pay nothing.</remarks>
internal sealed class UserNamespaceCache(IdRangeAllocator ranges) : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, SafeFileHandle> _namespaces = [];

    public SafeFileHandle Get(int rangeIndex)
    {
        lock (_lock)
        {
            if (_namespaces.TryGetValue(rangeIndex, out var existing))
            {
                return existing;
            }

            var created = Create(ranges.HostIdOf(rangeIndex));
            _namespaces[rangeIndex] = created;
            return created;
        }
    }

    private static SafeFileHandle Create(long hostId)
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

            WriteMap($"/proc/{helper.Id}/uid_map", hostId);
            WriteMap($"/proc/{helper.Id}/gid_map", hostId);
            return File.OpenHandle(nsPath, FileMode.Open, FileAccess.Read);
        }
        finally
        {
            helper.Kill();
            helper.WaitForExit();
        }
    }

    /// <summary>A map file takes exactly one write at offset 0 on an existing file (no O_CREAT/O_TRUNC).</summary>
    private static void WriteMap(string path, long hostId)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        stream.Write(System.Text.Encoding.ASCII.GetBytes($"0 {hostId} {IdRangeAllocator.RangeSize}\n"));
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
        }
    }
}
