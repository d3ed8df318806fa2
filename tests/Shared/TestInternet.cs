using System.Diagnostics;

namespace Cordon.Testing;

/// <summary>The tests' own small internet (tests/testnet/up): "public" hosts in TEST-NET-2 with HTTP, HTTPS from a
/// test CA and a TCP echo, their DNS, and a "private" host, all in a network namespace on this machine. No test
/// sends a packet to an address outside it.</summary>
public static class TestInternet
{
    public const string PublicHost = "198.51.100.10";
    public const string OtherPublicHost = "198.51.100.11";
    public const string PrivateHost = "172.31.77.10";
    public const string Dns = "198.51.100.53";

    /// <summary>Resolves to <see cref="PublicHost"/>, as does every other name under cordon.test not listed here.</summary>
    public const string Domain = "cordon.test";

    /// <summary>Resolves to <see cref="OtherPublicHost"/>.</summary>
    public const string OtherName = "other.cordon.test";

    /// <summary>Resolves to <see cref="PrivateHost"/>.</summary>
    public const string PrivateName = "private.cordon.test";

    /// <summary>Resolves to the cloud metadata address.</summary>
    public const string MetadataName = "metadata.cordon.test";

    private static readonly Lock Starting = new();
    private static string? _directory;

    /// <summary>Where it keeps its CA (ca.crt), its DNS query log (queries.log) and the files its hosts serve.</summary>
    public static string StateDirectory
    {
        get
        {
            // Not a Lazy: a start that failed is tried again by the next test rather than failing every one.
            lock (Starting)
            {
                return _directory ??= Start();
            }
        }
    }

    public static string CaCertificate => Path.Combine(StateDirectory, "ca.crt");

    /// <summary>Names the test internet's DNS was asked for so far (dnsmasq's log).</summary>
    public static string Queries => File.ReadAllText(Path.Combine(StateDirectory, "queries.log"));

    /// <summary>Requests its hosts got under <c>/record/</c>: one JSON line each, with the headers that arrived.</summary>
    public static string RecordedRequests
    {
        get
        {
            var path = Path.Combine(StateDirectory, "requests.log");
            return File.Exists(path) ? File.ReadAllText(path) : "";
        }
    }

    /// <summary>Starts it (or finds it running).</summary>
    public static void EnsureUp() => _ = StateDirectory;

    private static string Start()
    {
        var script = Path.Combine(TestPaths.RepositoryRoot, "tests", "testnet", "up");
        using var process = Process.Start(new ProcessStartInfo(script) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0
            ? output.Trim()
            : throw new InvalidOperationException($"tests/testnet/up exited {process.ExitCode}: {error}");
    }
}
