using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Cordon.Runtime.Interop;

/// <summary>A copy of a program in a sealed memfd (no writes, no resizing, no new seals), run through
/// <c>/proc/{server}/fd/{n}</c> instead of its path.</summary>
/// <remarks>
/// crun protects its host binary from containers that write to <c>/proc/self/exe</c> (CVE-2019-5736) by
/// re-executing itself from a read-only copy on every start, unless it already runs from a fully sealed memfd:
/// a second exec and dynamic link of a dozen libraries, ~1 ms of each sandbox create. A sealed memfd made once
/// gives the same protection (nothing can write to it) without that cost, the arrangement crun's own source
/// suggests for administrators. The copy is taken at start; an upgraded runtime is picked up on restart.
/// </remarks>
internal sealed partial class SealedBinary : IDisposable
{
    private const uint MFD_CLOEXEC = 1;
    private const uint MFD_ALLOW_SEALING = 2;
    private const int F_ADD_SEALS = 1033;
    private const int F_SEAL_SEAL = 1;
    private const int F_SEAL_SHRINK = 2;
    private const int F_SEAL_GROW = 4;
    private const int F_SEAL_WRITE = 8;

    private readonly SafeFileHandle _handle;

    private SealedBinary(SafeFileHandle handle)
    {
        _handle = handle;
        Path = $"/proc/{Environment.ProcessId}/fd/{handle.DangerousGetHandle()}";
    }

    /// <summary>The path to execute (valid while this object lives).</summary>
    public string Path { get; }

    /// <summary>Copies <paramref name="program"/> into a sealed memfd.</summary>
    /// <exception cref="IOException">The kernel refused (no memfd or sealing support).</exception>
    public static SealedBinary Create(string program)
    {
        var bytes = File.ReadAllBytes(program);
        var fd = memfd_create(System.IO.Path.GetFileName(program), MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
        {
            throw new IOException($"memfd_create: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            RandomAccess.Write(handle, bytes, 0);
            if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
            {
                throw new IOException($"sealing the copy of {program}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }

            return new SealedBinary(handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void Dispose() => _handle.Dispose();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int memfd_create(string name, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command, int argument);
}
