using System.Text.Json.Nodes;
using Cordon.Runtime.Interop;

namespace Cordon.Runtime.Oci;

/// <summary>Turns <see cref="SeccompPolicy"/> into what the OCI runtimes take: a BPF program compiled once by
/// libseccomp (crun's <c>run.oci.seccomp_bpf_data</c> annotation, ~free per start) and the equivalent
/// OCI JSON profile (runc and runsc, which compile it per start).</summary>
public static class SeccompCompiler
{
    /// <summary>Compiles the policy to a classic BPF program (an array of <c>struct sock_filter</c>).</summary>
    /// <exception cref="InvalidOperationException">libseccomp is missing or refused the policy.</exception>
    public static byte[] CompileBpf()
    {
        nint ctx;
        try
        {
            ctx = LibSeccomp.seccomp_init(LibSeccomp.ActErrno(SeccompPolicy.Eperm));
        }
        catch (DllNotFoundException ex)
        {
            throw new InvalidOperationException("libseccomp.so.2 is not installed (Debian package libseccomp2).", ex);
        }

        if (ctx == 0)
        {
            throw new InvalidOperationException("seccomp_init failed.");
        }

        try
        {
            foreach (var name in SeccompPolicy.Allowed)
            {
                var nr = LibSeccomp.seccomp_syscall_resolve_name(name);
                if (nr < 0)
                {
                    continue; // not a syscall on this architecture or this libseccomp
                }

                Check(LibSeccomp.AddRule(ctx, LibSeccomp.ActAllow, nr), name);
            }

            // clone without namespace flags.
            var clone = new LibSeccomp.ArgCmp { Arg = 0, Op = LibSeccomp.CmpMaskedEq, DatumA = SeccompPolicy.ForbiddenCloneFlags, DatumB = 0 };
            Check(LibSeccomp.AddRule(ctx, LibSeccomp.ActAllow, LibSeccomp.seccomp_syscall_resolve_name("clone"), clone), "clone");

            // clone3 hides its flags in memory seccomp cannot read: make libc fall back to clone.
            Check(LibSeccomp.AddRule(ctx, LibSeccomp.ActErrno(SeccompPolicy.Enosys), LibSeccomp.seccomp_syscall_resolve_name("clone3")), "clone3");

            // socket and socketpair: the allowed families open, the rest answer EAFNOSUPPORT.
            foreach (var (call, allowed) in new[] { ("socket", SeccompPolicy.AllowedSocketFamilies), ("socketpair", (IReadOnlyList<ulong>)[SeccompPolicy.UnixFamily]) })
            {
                var nr = LibSeccomp.seccomp_syscall_resolve_name(call);
                foreach (var family in allowed)
                {
                    Check(LibSeccomp.AddRule(ctx, LibSeccomp.ActAllow, nr, new LibSeccomp.ArgCmp { Arg = 0, Op = LibSeccomp.CmpEq, DatumA = family }), call);
                }

                var refuse = LibSeccomp.ActErrno(SeccompPolicy.Eafnosupport);
                var (below, atOrAbove) = SeccompPolicy.RefusedFamilies(allowed);
                foreach (var family in below)
                {
                    Check(LibSeccomp.AddRule(ctx, refuse, nr, new LibSeccomp.ArgCmp { Arg = 0, Op = LibSeccomp.CmpEq, DatumA = family }), call);
                }

                Check(LibSeccomp.AddRule(ctx, refuse, nr, new LibSeccomp.ArgCmp { Arg = 0, Op = LibSeccomp.CmpGe, DatumA = atOrAbove }), call);
            }

            var personality = LibSeccomp.seccomp_syscall_resolve_name("personality");
            foreach (var value in SeccompPolicy.AllowedPersonalities)
            {
                var cmp = new LibSeccomp.ArgCmp { Arg = 0, Op = LibSeccomp.CmpEq, DatumA = value };
                Check(LibSeccomp.AddRule(ctx, LibSeccomp.ActAllow, personality, cmp), "personality");
            }

            var file = Path.Combine(Path.GetTempPath(), $"cordon-seccomp-{Environment.ProcessId}-{Guid.NewGuid():N}.bpf");
            try
            {
                using (var stream = new FileStream(file, FileMode.CreateNew, FileAccess.ReadWrite))
                {
                    var fd = (int)stream.SafeFileHandle.DangerousGetHandle();
                    Check(LibSeccomp.seccomp_export_bpf(ctx, fd), "export");
                }

                return File.ReadAllBytes(file);
            }
            finally
            {
                File.Delete(file);
            }
        }
        finally
        {
            LibSeccomp.seccomp_release(ctx);
        }
    }

    /// <summary>The same policy as an OCI <c>linux.seccomp</c> object.</summary>
    public static JsonObject ToOciJson()
    {
        var syscalls = new JsonArray
        {
            new JsonObject { ["names"] = new JsonArray([.. SeccompPolicy.Allowed.Select(n => (JsonNode)n)]), ["action"] = "SCMP_ACT_ALLOW" },
            new JsonObject
            {
                ["names"] = new JsonArray("clone"),
                ["action"] = "SCMP_ACT_ALLOW",
                ["args"] = new JsonArray(new JsonObject { ["index"] = 0, ["value"] = SeccompPolicy.ForbiddenCloneFlags, ["valueTwo"] = 0, ["op"] = "SCMP_CMP_MASKED_EQ" }),
            },
            new JsonObject { ["names"] = new JsonArray("clone3"), ["action"] = "SCMP_ACT_ERRNO", ["errnoRet"] = SeccompPolicy.Enosys },
        };
        foreach (var (call, allowed) in new[] { ("socket", SeccompPolicy.AllowedSocketFamilies), ("socketpair", (IReadOnlyList<ulong>)[SeccompPolicy.UnixFamily]) })
        {
            foreach (var family in allowed)
            {
                syscalls.Add(new JsonObject
                {
                    ["names"] = new JsonArray(call),
                    ["action"] = "SCMP_ACT_ALLOW",
                    ["args"] = new JsonArray(new JsonObject { ["index"] = 0, ["value"] = family, ["op"] = "SCMP_CMP_EQ" }),
                });
            }

            var (below, atOrAbove) = SeccompPolicy.RefusedFamilies(allowed);
            foreach (var (value, op) in below.Select(v => (v, "SCMP_CMP_EQ")).Append((atOrAbove, "SCMP_CMP_GE")))
            {
                syscalls.Add(new JsonObject
                {
                    ["names"] = new JsonArray(call),
                    ["action"] = "SCMP_ACT_ERRNO",
                    ["errnoRet"] = SeccompPolicy.Eafnosupport,
                    ["args"] = new JsonArray(new JsonObject { ["index"] = 0, ["value"] = value, ["op"] = op }),
                });
            }
        }

        foreach (var value in SeccompPolicy.AllowedPersonalities)
        {
            syscalls.Add(new JsonObject
            {
                ["names"] = new JsonArray("personality"),
                ["action"] = "SCMP_ACT_ALLOW",
                ["args"] = new JsonArray(new JsonObject { ["index"] = 0, ["value"] = value, ["op"] = "SCMP_CMP_EQ" }),
            });
        }

        return new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ERRNO",
            ["defaultErrnoRet"] = SeccompPolicy.Eperm,
            ["architectures"] = new JsonArray("SCMP_ARCH_X86_64"),
            ["syscalls"] = syscalls,
        };
    }

    private static void Check(int rc, string what)
    {
        if (rc < 0)
        {
            throw new InvalidOperationException($"libseccomp refused the rule for '{what}' (error {rc}).");
        }
    }
}
