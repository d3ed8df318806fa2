using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Cordon.Testing;

/// <summary>One real Cordon server per test assembly: HTTP on a free loopback port, crun sandboxes, its own
/// data directory, and the busybox test image imported through the API.</summary>
public sealed class ServerFixture : IAsyncDisposable
{
    public const string AdminKey = "test-admin-key-0123456789";
    public const string TestImage = "busybox";

    private ServerFixture(RunningServer server, string dataDir)
    {
        Server = server;
        DataDir = dataDir;
        Client = new CordonClient(server.Address, AdminKey);
        Http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(2) };
        Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
    }

    public RunningServer Server { get; private set; }

    public string DataDir { get; }

    public CordonClient Client { get; private set; }

    /// <summary>A raw client with the admin key, for requests the SDK would never send.</summary>
    public HttpClient Http { get; private set; }

    public Uri Address => Server.Address;

    public static async Task<ServerFixture> StartAsync(string runtime = "crun", IReadOnlyDictionary<string, string?>? overrides = null, string? dataDir = null)
    {
        Environment.SetEnvironmentVariable("CORDON_API_KEY", AdminKey);
        dataDir ??= TestPaths.NewTempDirectory("server");
        var server = await CordonServer.StartAsync(Settings(runtime, dataDir, overrides), CancellationToken.None);
        RecordLog(server);
        var fixture = new ServerFixture(server, dataDir);
        if ((await fixture.Client.ListImagesAsync()).All(i => i.Name != TestImage))
        {
            await using var tarball = BusyboxImage.CreateTarball();
            await fixture.Client.ImportImageAsync(TestImage, tarball);
        }

        return fixture;
    }

    /// <summary>Stops the server and starts a new one on the same data directory (sandboxes keep running).</summary>
    public async Task RestartAsync(string runtime = "crun")
    {
        await Server.DisposeAsync();
        Client.Dispose();
        Http.Dispose();
        Server = await CordonServer.StartAsync(Settings(runtime, DataDir, null), CancellationToken.None);
        RecordLog(Server);
        Client = new CordonClient(Server.Address, AdminKey);
        Http = new HttpClient { BaseAddress = Server.Address, Timeout = TimeSpan.FromMinutes(2) };
        Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
    }

    /// <summary>Creates a tenant API key (not admin) through the API: its id and secret.</summary>
    public async Task<(string Id, string Secret)> CreateKeyAsync(string name)
    {
        using var created = await Http.PostAsync("/v1/keys", System.Net.Http.Json.JsonContent.Create(new { name }));
        created.EnsureSuccessStatusCode();
        var key = System.Text.Json.JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement;
        return (key.GetProperty("id").GetString()!, key.GetProperty("key").GetString()!);
    }

    /// <summary>A raw client that sends <paramref name="secret"/> as its API key.</summary>
    public HttpClient HttpWith(string secret)
    {
        var http = new HttpClient { BaseAddress = Server.Address, Timeout = TimeSpan.FromMinutes(2) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", secret);
        return http;
    }

    /// <summary>Creates a busybox sandbox that is destroyed when disposed.</summary>
    public async Task<TestSandbox> CreateSandboxAsync(CreateSandboxRequest? request = null)
    {
        var info = await Client.CreateSandboxAsync((request ?? new CreateSandboxRequest()) with { Image = request?.Image ?? TestImage, TimeoutSeconds = request?.TimeoutSeconds ?? 600 });
        return new TestSandbox(Client, info);
    }

    /// <summary>Its warnings and errors go where a failing test's report finds them (<see cref="ServerLog"/>).</summary>
    private static void RecordLog(RunningServer server)
        => server.App.Services.GetRequiredService<ILoggerFactory>().AddProvider(new ServerLog(server.Address.Authority));

    private static ServerSettings Settings(string runtime, string dataDir, IReadOnlyDictionary<string, string?>? overrides)
    {
        var all = new Dictionary<string, string?>
        {
            ["Cordon:PrepareDefaultImage"] = "false",
            ["Runtime:AgentPath"] = TestPaths.AgentPath,

            // What ./cordon serve runs: the static crun beside the server binary when it is the installed crun's
            // twin (StaticCrunRuntimeTests fails if it was not built), else the installed crun.
            ["Runtime:BundledRuntimePath"] = TestPaths.StaticCrunPath,

            // Sandboxes' names resolve in the tests' own small internet, never outside this machine.
            ["Cordon:UpstreamDns:0"] = TestInternet.Dns,
            ["Cordon:UpstreamCaFile"] = TestInternet.CaCertificate,
        };
        TestInternet.EnsureUp();
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        return new ServerSettings { Listen = "127.0.0.1:0", DataDir = dataDir, Runtime = runtime, Overrides = all };
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var sandbox in await Client.ListSandboxesAsync())
        {
            await Client.DeleteSandboxAsync(sandbox.Id);
        }

        await Server.DisposeAsync();
        Client.Dispose();
        Http.Dispose();
        TestPaths.UnmountTree(DataDir);
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A sandbox's directory still being removed by the runtime as this walks the tree (EBADF, ENOTEMPTY):
            // a temporary directory left behind is not the test's concern.
        }
    }
}
