using System.Security.Cryptography;

namespace Cordon.Runtime.Oci;

/// <summary>Which runtime program the driver runs: the configured path, else a static build beside the server
/// (made by tools/static-crun) while it is the twin of the installed runtime, else the installed runtime.</summary>
/// <remarks>
/// The static build is the same version and patch level as the installed package and starts faster (no shared
/// libraries to load). Its <c>.source</c> file records the SHA-256 of the installed program it was built from;
/// once a package upgrade replaces that program, the stale build is ignored until ./cordon rebuilds it, so a
/// security update of the distribution's runtime always takes effect.
/// </remarks>
public sealed record RuntimeProgram(string Path, bool IsStaticBuild, string? Note)
{
    public const string SourceSuffix = ".source";

    public static RuntimeProgram Select(OciRuntimeOptions options)
    {
        if (!string.IsNullOrEmpty(options.RuntimePath))
        {
            return new RuntimeProgram(options.RuntimePath, false, null);
        }

        var installed = $"/usr/bin/{options.Runtime}";
        return Select(installed, options.BundledRuntimePath);
    }

    internal static RuntimeProgram Select(string installed, string? bundled)
    {
        if (string.IsNullOrEmpty(bundled) || !File.Exists(bundled))
        {
            return new RuntimeProgram(installed, false, null);
        }

        if (!File.Exists(installed))
        {
            return new RuntimeProgram(installed, false, $"the static build beside the server is not used: {installed} (the package it was built from) is not installed");
        }

        string? recorded = null;
        if (File.Exists(bundled + SourceSuffix))
        {
            foreach (var line in File.ReadLines(bundled + SourceSuffix))
            {
                if (line.StartsWith("system-sha256=", StringComparison.Ordinal))
                {
                    recorded = line["system-sha256=".Length..].Trim();
                }
            }
        }

        string actual;
        using (var stream = File.OpenRead(installed))
        {
            actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        }

        return string.Equals(recorded, actual, StringComparison.Ordinal)
            ? new RuntimeProgram(bundled, true, null)
            : new RuntimeProgram(installed, false, $"the static build beside the server was made from another {System.IO.Path.GetFileName(installed)} than the one installed now, so the installed one runs; ./cordon rebuilds it");
    }
}
