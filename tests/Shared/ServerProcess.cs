using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Cordon.Client;
using Xunit;

namespace Cordon.Testing;

/// <summary>The real <c>cordon serve</c> in a process of its own (so its memory can be read from
/// <c>/proc/&lt;pid&gt;/status</c>), on a free loopback port and its own data directory, with the busybox test image
/// imported.</summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, Uri address, string dataDir)
    {
        _process = process;
        Address = address;
        DataDir = dataDir;
        Http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
        Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", ServerFixture.AdminKey);
        Client = new CordonClient(address, ServerFixture.AdminKey);
    }

    public Uri Address { get; }

    public string DataDir { get; }

    public int Pid => _process.Id;

    /// <summary>A raw client with the admin key.</summary>
    public HttpClient Http { get; }

    public CordonClient Client { get; }

    /// <summary>The server's resident memory now, in bytes.</summary>
    public long ResidentBytes()
    {
        var line = File.ReadLines($"/proc/{Pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    /// <param name="settings">Configuration keys (e.g. <c>Cordon:MaxOutputMemoryMiB</c>) and their values.</param>
    /// <param name="dataDir">The data directory of a server killed before (<see cref="Kill"/>); a new one when null.</param>
    public static async Task<ServerProcess> StartAsync(IReadOnlyDictionary<string, string>? settings = null, string? dataDir = null)
    {
        var restarted = dataDir is not null;
        dataDir ??= TestPaths.NewTempDirectory("server-process");
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var info = new ProcessStartInfo(TestPaths.CliPath, ["serve", "--listen", $"127.0.0.1:{port}", "--data-dir", dataDir])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["CORDON_API_KEY"] = ServerFixture.AdminKey;
        var all = new Dictionary<string, string>
        {
            ["Cordon:PrepareDefaultImage"] = "false",
            ["Runtime:AgentPath"] = TestPaths.AgentPath,
            ["Runtime:BundledRuntimePath"] = TestPaths.StaticCrunPath,

            // Sandboxes' names resolve in the tests' own small internet, never outside this machine.
            ["Cordon:UpstreamDns:0"] = TestInternet.Dns,
            ["Cordon:UpstreamCaFile"] = TestInternet.CaCertificate,
        };
        TestInternet.EnsureUp();
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            all[key] = value;
        }

        foreach (var (key, value) in all)
        {
            info.Environment["CORDON_" + key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("cordon serve did not start");
        var log = new ServerLog($"cordon serve 127.0.0.1:{port}");
        process.OutputDataReceived += (_, e) => log.AddConsoleLine(e.Data);
        process.ErrorDataReceived += (_, e) => log.AddConsoleLine(e.Data);
        process.EnableRaisingEvents = true;
        var pid = process.Id;
        process.Exited += (_, _) => log.Add($"cordon serve (pid {pid}) exited with {process.ExitCode}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, new Uri($"http://127.0.0.1:{port}/"), dataDir);
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        while (true)
        {
            try
            {
                using var health = await server.Http.GetAsync("/health", limit.Token);
                if (health.IsSuccessStatusCode)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (process.HasExited)
            {
                throw new InvalidOperationException($"cordon serve exited with {process.ExitCode} before it answered");
            }

            await Task.Delay(100, limit.Token);
        }

        if (!restarted)
        {
            await using var tarball = BusyboxImage.CreateTarball();
            await server.Client.ImportImageAsync(ServerFixture.TestImage, tarball);
        }

        return server;
    }

    private bool _killed;

    /// <summary>SIGKILL, as a crash or the OOM killer would: nothing of the server's own shutdown runs. Its sandboxes
    /// and data directory stay for a server started on <see cref="DataDir"/>; disposing this one then only closes
    /// its clients.</summary>
    public void Kill()
    {
        _killed = true;
        _process.Kill();

        // With a timeout: the wait does not also wait for the end of its output, which its sandboxes' helpers may hold.
        Assert.True(_process.WaitForExit(TimeSpan.FromSeconds(30)), "cordon serve did not die of SIGKILL");
    }

    public async ValueTask DisposeAsync()
    {
        if (_killed)
        {
            _process.Dispose();
            Http.Dispose();
            Client.Dispose();
            return;
        }

        try
        {
            foreach (var sandbox in await Client.ListSandboxesAsync())
            {
                await Client.DeleteSandboxAsync(sandbox.Id);
            }
        }
        catch (HttpRequestException)
        {
        }

        // SIGTERM: the server shuts down as it does under systemd.
        _ = Process.Start("/bin/kill", ["-TERM", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (!_process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
        Http.Dispose();
        Client.Dispose();
        TestPaths.UnmountTree(DataDir);
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
