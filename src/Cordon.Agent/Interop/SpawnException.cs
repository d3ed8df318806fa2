using System.Runtime.InteropServices;

namespace Cordon.Agent.Interop;

/// <summary>A libc call failed with <see cref="Errno"/>.</summary>
internal sealed class SpawnException(int errno) : Exception(Marshal.GetPInvokeErrorMessage(errno))
{
    public int Errno { get; } = errno;
}
