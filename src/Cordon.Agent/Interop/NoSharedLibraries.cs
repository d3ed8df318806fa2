using System.Runtime.InteropServices;

namespace Cordon.Agent.Interop;

/// <summary>Replaces <c>dlopen</c> and glibc's internal <c>__libc_dlopen_mode</c> (NSS, iconv) in the agent (the link
/// wraps both, see Cordon.Agent.csproj): no shared library is ever loaded into this statically linked process.</summary>
/// <remarks>
/// Parts of .NET load native libraries on first use, e.g. RandomNumberGenerator loads OpenSSL. Static glibc can
/// dlopen, but the library brings a second libc.so whose thread-local variables are placed over the agent's own:
/// its malloc overwrote the runtime's per-thread allocation context and corrupted the GC heap (the agent
/// crashed in about one sandbox in six that started a code context in an image with OpenSSL). Failing the load
/// turns such a use into an error instead (user lookups through NSS then find no user, which the agent
/// does not need: it reads /etc/passwd itself), in every image, not only in those without the library.
/// </remarks>
internal static unsafe class NoSharedLibraries
{
    [UnmanagedCallersOnly(EntryPoint = "__wrap_dlopen")]
    private static nint Open(byte* file, int mode) => 0;

    [UnmanagedCallersOnly(EntryPoint = "__wrap___libc_dlopen_mode")]
    private static nint OpenForLibc(byte* file, int mode) => 0;
}
