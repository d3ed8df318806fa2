using System.Diagnostics;
using System.Globalization;
using Cordon.Client;
using Cordon.Protocol.Api;

namespace Cordon.Bench;

/// <summary>Sandbox networks against the tests' own small internet (tests/testnet, started by bench/run; the server
/// resolves there): create → first command with <c>internet</c> against <c>none</c> (interleaved, same run); a bulk
/// download inside a sandbox, direct and through the name proxy, against the same download from the host; the
/// connect → response time of a small request with and without the proxy (the added latency of a name rule).</summary>
internal static class NetworkBench
{
    private const string Host = "198.51.100.10";
    private const string Name = "pkgs.cordon.test";
    private const long DownloadBytes = 256L << 20;

    public static async Task<(IReadOnlyList<Samples> Samples, IReadOnlyList<string> Lines)?> RunAsync(CordonClient client, int iterations)
    {
        if (!File.Exists("/run/cordon-testnet/ready"))
        {
            return null;
        }

        var none = new Samples("network: create → `echo hi` with `none`");
        var internet = new Samples("network: create → `echo hi` with `internet`");
        var echo = ExecRequestBody.FromArgv("echo", "hi");
        Console.Error.WriteLine($"bench: {iterations} × create → echo with none and with internet, interleaved");
        for (var i = 0; i < iterations; i++)
        {
            foreach (var (samples, policy) in new[] { (none, new NetworkPolicy { Internet = false }), (internet, new NetworkPolicy { Internet = true }) })
            {
                var stopwatch = Stopwatch.StartNew();
                var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox", Network = policy });
                await client.ExecAsync(sandbox.Id, echo);
                samples.Add(stopwatch.Elapsed.TotalMilliseconds);
                await client.DeleteSandboxAsync(sandbox.Id);
            }
        }

        // Bulk download: the same GET of 256 MiB with busybox nc, in a sandbox (direct, and proxied by a name
        // rule) and on the host; best of three each (a download is long enough to be steady; noise only slows).
        Console.Error.WriteLine("bench: 256 MiB download from the test internet: host, sandbox direct, sandbox through the proxy");
        var fetch = $"printf 'GET /bytes/{DownloadBytes} HTTP/1.0\\r\\nHost: {Name}\\r\\n\\r\\n' | busybox nc {Host} 80 | wc -c";
        var hostRate = 0.0;
        for (var i = 0; i < 3; i++)
        {
            hostRate = Math.Max(hostRate, await TimedAsync(() => HostShellAsync(fetch)));
        }

        // As many CPUs as the host has (then it is not pinned to one), so the path is measured, not the limit.
        var direct = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox", Cpu = Environment.ProcessorCount, Network = new NetworkPolicy { Internet = true }, TimeoutSeconds = 600 });
        var proxied = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "bench-busybox", Cpu = Environment.ProcessorCount, Network = new NetworkPolicy { Internet = false, AllowOut = [Name] }, TimeoutSeconds = 600 });
        var directRate = 0.0;
        var proxiedRate = 0.0;
        var sandboxFetch = fetch.Replace("busybox nc", "nc", StringComparison.Ordinal);
        for (var i = 0; i < 3; i++)
        {
            directRate = Math.Max(directRate, await TimedAsync(() => SandboxShellAsync(client, direct.Id, sandboxFetch)));
            proxiedRate = Math.Max(proxiedRate, await TimedAsync(() => SandboxShellAsync(client, proxied.Id, sandboxFetch)));
        }

        await client.DeleteSandboxAsync(direct.Id);
        await client.DeleteSandboxAsync(proxied.Id);

        // Connect → first response byte of a small request, per request, inside default-image sandboxes (Python
        // times each one): the proxy's added latency is the difference of the medians.
        var lines = new List<string>
        {
            $"| bulk download, host (reference) | {hostRate:F0} MiB/s | 1.00× |",
            $"| bulk download, sandbox with `internet` (kernel path) | {directRate:F0} MiB/s | {directRate / hostRate:F2}× |",
            $"| bulk download, sandbox with a name rule (through the proxy) | {proxiedRate:F0} MiB/s | {proxiedRate / hostRate:F2}× |",
        };
        var images = await client.ListImagesAsync();
        if (images.Any(i => i.Name == "default" && i.Status == "ready"))
        {
            var (directMs, proxiedMs) = await ConnectLatencyAsync(client, iterations * 2);
            lines.Add($"| small request connect → response p50, direct | {directMs:F2} ms | |");
            lines.Add($"| small request connect → response p50, through the proxy (name rule) | {proxiedMs:F2} ms | +{proxiedMs - directMs:F2} ms |");
            lines.AddRange(await SecretsAsync(client, iterations * 2));
        }

        return ([none, internet], lines);
    }

    private static async Task<(double Direct, double Proxied)> ConnectLatencyAsync(CordonClient client, int count)
    {
        const string Script = """
            import socket, statistics, sys, time
            host, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
            request = f"GET / HTTP/1.0\r\nHost: {name}\r\n\r\n".encode()
            times = []
            for _ in range(count + 20):
                start = time.perf_counter()
                s = socket.create_connection((host, 80))
                s.sendall(request)
                s.recv(1)
                times.append((time.perf_counter() - start) * 1000)
                s.close()
            print(statistics.median(times[20:]))
            """;
        var results = new List<double>();
        foreach (var policy in new[] { new NetworkPolicy { Internet = true }, new NetworkPolicy { Internet = false, AllowOut = [Name] } })
        {
            var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Network = policy });
            await client.WriteFileAsync(sandbox.Id, "/tmp/latency.py", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(Script)));
            var result = await client.ExecAsync(sandbox.Id, ExecRequestBody.FromArgv("python3", "/tmp/latency.py", Host, Name, count.ToString(CultureInfo.InvariantCulture)) with { TimeoutSeconds = 300 });
            results.Add(double.Parse(result.Stdout.Trim(), CultureInfo.InvariantCulture));
            await client.DeleteSandboxAsync(sandbox.Id);
        }

        return (results[0], results[1]);
    }

    /// <summary>What a secret costs: HTTPS connect → first response byte, and an HTTPS bulk download, in a sandbox whose
    /// header rule makes the proxy open the connection, against the same with the connection passed through.</summary>
    private static async Task<IReadOnlyList<string>> SecretsAsync(CordonClient client, int count)
    {
        const string Script = """
            import socket, ssl, statistics, sys, time
            name, cafile, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
            context = ssl.create_default_context(cafile=None if cafile == "default" else cafile)
            request = f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode()
            times = []
            for _ in range(count + 20):
                start = time.perf_counter()
                s = context.wrap_socket(socket.create_connection((name, 443)), server_hostname=name)
                s.sendall(request)
                s.recv(1)
                times.append((time.perf_counter() - start) * 1000)
                s.close()
            print(statistics.median(times[20:]))
            """;
        try
        {
            await client.DeleteSecretAsync("bench-token");
        }
        catch (CordonApiException)
        {
        }

        await client.CreateSecretAsync(new CreateSecretRequest { Name = "bench-token", Value = "bench-value" });
        var ruled = new NetworkPolicy
        {
            Internet = true,
            Headers = new Dictionary<string, IReadOnlyDictionary<string, string>> { [Name] = new Dictionary<string, string> { ["X-Token"] = "${secrets.bench-token}" } },
        };
        var download = $"curl -s -o /dev/null -w '%{{size_download}}' https://{Name}/bytes/{DownloadBytes}";
        var results = new List<(double Ms, double Rate)>();
        foreach (var (policy, ca) in new[] { (new NetworkPolicy { Internet = true }, "/tmp/ca.crt"), (ruled, "default") })
        {
            var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Network = policy, Cpu = Environment.ProcessorCount, TimeoutSeconds = 600 });
            await client.WriteFileAsync(sandbox.Id, "/tmp/tls.py", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(Script)));
            await using (var testCa = File.OpenRead("/run/cordon-testnet/ca.crt"))
            {
                await client.WriteFileAsync(sandbox.Id, "/tmp/ca.crt", testCa);
            }

            var latency = await client.ExecAsync(sandbox.Id, ExecRequestBody.FromArgv("python3", "/tmp/tls.py", Name, ca, count.ToString(CultureInfo.InvariantCulture)) with { TimeoutSeconds = 300 });
            var rate = 0.0;
            for (var i = 0; i < 3; i++)
            {
                rate = Math.Max(rate, await TimedAsync(() => SandboxShellAsync(client, sandbox.Id, ca == "default" ? download : download + " --cacert /tmp/ca.crt")));
            }

            results.Add((double.Parse(latency.Stdout.Trim(), CultureInfo.InvariantCulture), rate));
            await client.DeleteSandboxAsync(sandbox.Id);
        }

        await client.DeleteSecretAsync("bench-token");
        return
        [
            $"| HTTPS connect → response p50, passed through | {results[0].Ms:F2} ms | |",
            $"| HTTPS connect → response p50, opened for a secret (header rule) | {results[1].Ms:F2} ms | +{results[1].Ms - results[0].Ms:F2} ms |",
            $"| HTTPS bulk download (curl), passed through | {results[0].Rate:F0} MiB/s | 1.00× |",
            $"| HTTPS bulk download (curl), opened for a secret | {results[1].Rate:F0} MiB/s | {results[1].Rate / results[0].Rate:F2}× |",
        ];
    }

    /// <summary>MiB per second of a download that printed its byte count.</summary>
    private static async Task<double> TimedAsync(Func<Task<string>> download)
    {
        var stopwatch = Stopwatch.StartNew();
        var printed = await download();
        var seconds = stopwatch.Elapsed.TotalSeconds;
        var bytes = long.Parse(printed.Trim(), CultureInfo.InvariantCulture);
        return bytes < DownloadBytes ? throw new InvalidOperationException($"the download stopped at {bytes} bytes") : bytes / seconds / (1 << 20);
    }

    private static async Task<string> SandboxShellAsync(CordonClient client, string id, string command)
        => (await client.ExecAsync(id, ExecRequestBody.FromArgv("sh", "-c", command) with { TimeoutSeconds = 300 })).Stdout;

    private static async Task<string> HostShellAsync(string command)
    {
        using var process = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", command]) { RedirectStandardOutput = true })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return output;
    }
}
