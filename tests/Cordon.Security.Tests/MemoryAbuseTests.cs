using System.Buffers.Binary;
using System.Net;
using System.Text;
using Cordon.Testing;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>Finding 3 and 12: every buffer a tenant can grow has a bound. A real server in its own process is
/// abused the ways the review found, all at once, and its resident memory is read from /proc while it happens
/// (threat model row 29).</summary>
public sealed class MemoryAbuseTests
{
    /// <summary>Output memory the server is given; what it holds for commands stays within it.</summary>
    private const int OutputMemoryMiB = 64;

    /// <summary>Growth of the server's resident memory allowed under abuse: the output budget, the bounded
    /// per-reader and per-watcher buffers, and the runtime's own slack. Unbounded, each abuse below grows the
    /// server by hundreds of megabytes in seconds (a reader of /dev/zero alone by its whole output).</summary>
    private const long AllowedGrowth = 256L << 20;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ServerMemory_StaysBounded_UnderEveryOutputAndBufferAbuseAtOnce()
    {
        await using var server = await ServerProcess.StartAsync(new Dictionary<string, string> { ["Cordon:MaxOutputMemoryMiB"] = OutputMemoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await using var sandbox = await EnvdSandbox.CreateAsync(server.Http, Token, ServerFixture.TestImage);
        await using var mcp = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(server.Address, "/mcp"),
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + ServerFixture.AdminKey },
        }), cancellationToken: Token);

        // Warm up every path once (code is loaded and compiled), then take the baseline.
        await ReadStreamForAsync(sandbox, "echo warm", TimeSpan.FromSeconds(2));
        await mcp.CallToolAsync("read_file", new Dictionary<string, object?> { ["path"] = "/etc/hostname", ["sandboxId"] = sandbox.Id }, cancellationToken: Token);
        await Task.Delay(1000, Token);
        var baseline = server.ResidentBytes();

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Token);
        var peak = baseline;
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, server.ResidentBytes());
                await Task.Delay(250, CancellationToken.None);
            }
        }, Token);

        // 1. Background commands that print as fast as they can, nobody reading: E2B processes whose caller left.
        for (var i = 0; i < 12; i++)
        {
            using var started = await sandbox.SendAsync("/process.Process/Start", StartMessage("base64 /dev/zero"), "application/connect+json", streaming: true);
            Assert.Equal(HttpStatusCode.OK, started.StatusCode);
        }

        // 2. Slow readers: each follows `base64 /dev/zero` and does not read for 15 s, then reads for 2 s.
        var slowReaders = Enumerable.Range(0, 4).Select(_ => SlowReaderAsync(sandbox)).ToArray();

        // 3. Whole-file reads of endless files through MCP: refused, not buffered.
        var endless = new List<CallToolResult>();
        foreach (var (tool, path) in new[] { ("read_file", "/dev/zero"), ("read_file", "/dev/urandom"), ("edit_file", "/dev/zero"), ("read_file", "/proc/self/pagemap") })
        {
            endless.Add(await mcp.CallToolAsync(tool, new Dictionary<string, object?> { ["path"] = path, ["oldText"] = "a", ["newText"] = "b", ["sandboxId"] = sandbox.Id }, cancellationToken: Token));
        }

        // 4. Connect messages whose header promises more than anyone sends, or more than a message may be.
        var huge = new List<string>();
        foreach (var declared in new[] { int.MaxValue, 64 << 20, 5 << 20 })
        {
            var header = new byte[5 + (1 << 20)];
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(1), declared);
            using var response = await sandbox.SendAsync("/process.Process/Start", header, "application/connect+json");
            huge.Add(await response.Content.ReadAsStringAsync(Token));
        }

        // 5. Directory watchers: more than a sandbox may have, on a directory that fills with long names.
        await RunAsync(sandbox, "mkdir -p /tmp/w");
        var watchers = new List<string>();
        for (var i = 0; i < 24; i++)
        {
            using var response = await sandbox.SendAsync("/filesystem.Filesystem/CreateWatcher", Encoding.UTF8.GetBytes("{\"path\":\"/tmp/w\",\"recursive\":true}"), "application/json");
            watchers.Add(await response.Content.ReadAsStringAsync(Token));
        }

        await RunAsync(sandbox, "cd /tmp/w; n=$(printf '%0200d' 0); i=0; while [ $i -lt 3000 ]; do touch $n$i; rm $n$i; i=$((i+1)); done");

        var slowRead = await Task.WhenAll(slowReaders);
        var rssDuring = peak;
        await stop.CancelAsync();
        await sampler;

        var report = $"baseline {baseline >> 20} MiB, peak {rssDuring >> 20} MiB (+{(rssDuring - baseline) >> 20} MiB); slow readers read {string.Join(", ", slowRead.Select(b => $"{b >> 10} KiB"))}";
        TestContext.Current.TestOutputHelper?.WriteLine(report);

        Assert.All(endless, r => Assert.True(r.IsError, "an endless file was read whole"));
        Assert.All(huge, body => Assert.Contains("\"resource_exhausted\"", body, StringComparison.Ordinal));
        Assert.Equal(16, watchers.Count(w => w.Contains("\"watcherId\"", StringComparison.Ordinal)));
        Assert.Equal(8, watchers.Count(w => w.Contains("resource_exhausted", StringComparison.Ordinal)));
        Assert.All(slowRead, bytes => Assert.True(bytes > 64 << 10, report)); // the stalled stream flowed again
        Assert.True(rssDuring - baseline < AllowedGrowth, report);

        // The processes still run and still answer: the server held them back rather than failing them.
        var listed = await ReadUnaryAsync(sandbox, "/process.Process/List", "{}");
        Assert.True(listed.Split("base64").Length - 1 >= 12, listed);
    }

    private static byte[] StartMessage(string shell)
        => EnvdSandbox.Envelope(Encoding.UTF8.GetBytes($"{{\"process\":{{\"cmd\":\"/bin/sh\",\"args\":[\"-c\",\"{shell}\"]}}}}"));

    private static async Task RunAsync(EnvdSandbox sandbox, string shell)
    {
        using var response = await sandbox.SendAsync("/process.Process/Start", StartMessage(shell), "application/connect+json");
        var body = await response.Content.ReadAsStringAsync(Token);
        Assert.Contains("\"end\"", body, StringComparison.Ordinal);
    }

    private static async Task<string> ReadUnaryAsync(EnvdSandbox sandbox, string path, string json)
    {
        using var response = await sandbox.SendAsync(path, Encoding.UTF8.GetBytes(json), "application/json");
        return await response.Content.ReadAsStringAsync(Token);
    }

    /// <summary>Follows a loud process, stalls 15 s without reading, then reads for 2 s: the bytes read then.</summary>
    private static async Task<long> SlowReaderAsync(EnvdSandbox sandbox)
    {
        using var response = await sandbox.SendAsync("/process.Process/Start", StartMessage("base64 /dev/zero"), "application/connect+json", streaming: true);
        await using var body = await response.Content.ReadAsStreamAsync(Token);
        await Task.Delay(TimeSpan.FromSeconds(15), Token);
        return await ReadForAsync(body, TimeSpan.FromSeconds(2));
    }

    private static async Task ReadStreamForAsync(EnvdSandbox sandbox, string shell, TimeSpan time)
    {
        using var response = await sandbox.SendAsync("/process.Process/Start", StartMessage(shell), "application/connect+json", streaming: true);
        await using var body = await response.Content.ReadAsStreamAsync(Token);
        await ReadForAsync(body, time);
    }

    private static async Task<long> ReadForAsync(Stream body, TimeSpan time)
    {
        using var until = new CancellationTokenSource(time);
        var buffer = new byte[64 * 1024];
        long total = 0;
        try
        {
            int read;
            while ((read = await body.ReadAsync(buffer, until.Token)) > 0)
            {
                total += read;
            }
        }
        catch (OperationCanceledException) when (until.IsCancellationRequested)
        {
        }

        return total;
    }
}
