using System.Runtime.InteropServices;

namespace Cordon.Runtime.Interop;

/// <summary>libseccomp (Debian package libseccomp2), used once at start to compile the sandbox filter to
/// BPF so that starting a sandbox does not recompile it.</summary>
internal static unsafe partial class LibSeccomp
{
    private const string Library = "libseccomp.so.2";

    public const uint ActAllow = 0x7fff0000;
    public const uint ActKillProcess = 0x80000000;
    public const int CmpMaskedEq = 7;
    public const int CmpEq = 4;
    public const int CmpGe = 5;

    public static uint ActErrno(int errno) => 0x00050000u | ((uint)errno & 0xffff);

    [StructLayout(LayoutKind.Sequential)]
    public struct ArgCmp
    {
        public uint Arg;
        public int Op;
        public ulong DatumA;
        public ulong DatumB;
    }

    [LibraryImport(Library)]
    public static partial nint seccomp_init(uint defaultAction);

    [LibraryImport(Library)]
    public static partial void seccomp_release(nint ctx);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int seccomp_syscall_resolve_name(string name);

    [LibraryImport(Library)]
    private static partial int seccomp_rule_add_array(nint ctx, uint action, int syscall, uint argCount, ArgCmp* args);

    /// <summary>Adds a rule for <paramref name="syscall"/>, taking effect when every argument comparison holds.</summary>
    public static int AddRule(nint ctx, uint action, int syscall, params ReadOnlySpan<ArgCmp> args)
    {
        fixed (ArgCmp* comparisons = args)
        {
            return seccomp_rule_add_array(ctx, action, syscall, (uint)args.Length, args.IsEmpty ? null : comparisons);
        }
    }

    [LibraryImport(Library)]
    public static partial int seccomp_export_bpf(nint ctx, int fd);
}
