using System.Net;
using System.Net.Http.Json;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>Sandbox networks as users meet them, through REST, in default-image sandboxes, against the tests' own small
/// internet (tests/testnet: pkgs.cordon.test and the other names resolve there; no packet leaves this machine).</summary>
[Collection(DefaultImageCollection.Name)]
public sealed class NetworkTests(DefaultImageServer fixture)
{
    private const string Pkgs = "pkgs." + TestInternet.Domain;

    private static CreateSandboxRequest With(bool? internet, string[]? allow = null, string[]? deny = null)
        => new() { Network = new NetworkPolicy { Internet = internet, AllowOut = allow, DenyOut = deny } };

    private async Task<TestSandbox> CreateAsync(CreateSandboxRequest? request = null)
    {
        TestInternet.EnsureUp();
        var sandbox = await fixture.CreateSandboxAsync(request);
        await using var ca = File.OpenRead(TestInternet.CaCertificate);
        await fixture.Server.Client.WriteFileAsync(sandbox.Id, "/tmp/ca.crt", ca);
        return sandbox;
    }

    /// <summary>curl's body, or "exit N" when it failed (6: no such name, 7: refused, 35/56: reset).</summary>
    private static async Task<string> CurlAsync(TestSandbox sandbox, string arguments)
    {
        var result = await sandbox.ShAsync($"curl -sS --max-time 20 --cacert /tmp/ca.crt {arguments}", 60);
        return result.ExitCode == 0 ? result.Stdout : $"exit {result.ExitCode}: {result.Stderr.Trim()}";
    }

    [Fact]
    public async Task Defaults_PipInstallNpmInstallAndGitClone_FromTheInternet()
    {
        await using var sandbox = await CreateAsync();

        var result = await sandbox.ShAsync(
            $"pip install -q --disable-pip-version-check --root-user-action=ignore --cert /tmp/ca.crt --index-url https://{Pkgs}/simple/ cordon-hello 2>&1 && python3 -c 'import cordon_hello; print(cordon_hello.GREETING)' && " +
            $"cd /tmp && npm install --silent --no-audit --no-fund --cafile /tmp/ca.crt --registry https://{Pkgs}/npm/ cordon-hello 2>&1 && node -e \"console.log(require('cordon-hello'))\" && " +
            $"GIT_SSL_CAINFO=/tmp/ca.crt git clone -q https://{Pkgs}/git/hello.git /tmp/hello 2>&1 && cat /tmp/hello/README", 180);

        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        Assert.Equal("hello from the test index\nhello from the test registry\nhello from the test repository\n", result.Stdout);
        Assert.True((await fixture.Server.Client.GetSandboxAsync(sandbox.Id)).Network.Internet);
    }

    [Fact]
    public async Task Internet_ReachesPublicHosts_NeverPrivateRangesMetadataOrTheHost()
    {
        await using var sandbox = await CreateAsync(With(internet: true));

        Assert.StartsWith($"hello from {TestInternet.PublicHost}", await CurlAsync(sandbox, $"http://{TestInternet.PublicHost}/"));
        Assert.StartsWith($"hello from {TestInternet.PublicHost} for {Pkgs}", await CurlAsync(sandbox, $"https://{Pkgs}/"));
        Assert.StartsWith("exit 7", await CurlAsync(sandbox, $"http://{TestInternet.PrivateName}/")); // resolves, then refused
        Assert.StartsWith("exit 7", await CurlAsync(sandbox, "http://169.254.169.254/latest/meta-data/"));
        Assert.StartsWith("exit 7", await CurlAsync(sandbox, "http://198.51.100.254/")); // the host's own address
        Assert.StartsWith("exit 7", await CurlAsync(sandbox, "http://127.0.0.1:1/"));

        // The reserved ranges' refusals are the sandbox's own count, though every default-policy sandbox shares one chain.
        Assert.True((await fixture.Server.Client.GetMetricsAsync(sandbox.Id)).NetworkRefused >= 2);
        var events = await fixture.Server.Client.GetEventsAsync(sandbox.Id);
        Assert.Contains(events, e => e.Kind == "network.refused" && e.Message.Contains("a reserved range", StringComparison.Ordinal));
    }

    /// <summary>A policy changed from the default to rules of its own and back takes effect each way, at once.</summary>
    [Fact]
    public async Task PolicyChanges_FromTheDefaultAndBack_TakeEffectEachTime()
    {
        await using var sandbox = await CreateAsync();
        var client = fixture.Server.Client;
        var publicUrl = $"http://{TestInternet.PublicHost}/";
        Assert.StartsWith("hello", await CurlAsync(sandbox, publicUrl));

        await client.SetNetworkAsync(sandbox.Id, new NetworkPolicy { Internet = true, DenyOut = [TestInternet.PublicHost] });
        Assert.StartsWith("exit 7", await CurlAsync(sandbox, $"telnet://{TestInternet.PublicHost}:80"));
        Assert.Contains(await client.GetEventsAsync(sandbox.Id), e => e.Kind == "network.refused" && e.Message.Contains($"denied by rule '{TestInternet.PublicHost}'", StringComparison.Ordinal));

        await client.SetNetworkAsync(sandbox.Id, new NetworkPolicy { Internet = true });
        Assert.StartsWith("hello", await CurlAsync(sandbox, publicUrl));
        Assert.StartsWith("exit 7", await CurlAsync(sandbox, "http://10.255.255.1/"));

        await client.SetNetworkAsync(sandbox.Id, new NetworkPolicy { Internet = false });
        Assert.StartsWith("exit 7", await CurlAsync(sandbox, $"http://{TestInternet.PublicHost}:80/"));

        await client.SetNetworkAsync(sandbox.Id, new NetworkPolicy { Internet = true });
        Assert.StartsWith("hello", await CurlAsync(sandbox, publicUrl));
        Assert.Contains(await client.GetEventsAsync(sandbox.Id), e => e.Kind == "network.refused" && e.Message.Contains("a reserved range", StringComparison.Ordinal));
    }

    /// <summary>A domain allow-list: the allowed name works over HTTP and HTTPS and is dialled by name — a forged
    /// /etc/hosts entry or Host header cannot send it elsewhere; other names do not resolve; an IP literal gets a
    /// 403 that names why; DNS carries nothing out.</summary>
    [Fact]
    public async Task DomainAllowList_AllowsOnlyThatName_DialledByName()
    {
        await using var sandbox = await CreateAsync(With(internet: false, allow: [Pkgs]));

        Assert.StartsWith($"hello from {TestInternet.PublicHost} for {Pkgs}", await CurlAsync(sandbox, $"http://{Pkgs}/"));
        Assert.StartsWith($"hello from {TestInternet.PublicHost} for {Pkgs}", await CurlAsync(sandbox, $"https://{Pkgs}/"));
        Assert.StartsWith("exit 6", await CurlAsync(sandbox, $"http://{TestInternet.OtherName}/"));

        // Forged answers: the name still reaches its real address, not the forged one.
        Assert.StartsWith($"hello from {TestInternet.PublicHost} for {Pkgs}", await CurlAsync(sandbox, $"--resolve {Pkgs}:80:{TestInternet.PrivateHost} http://{Pkgs}/"));
        Assert.StartsWith($"hello from {TestInternet.PublicHost} for {Pkgs}", await CurlAsync(sandbox, $"--resolve {Pkgs}:443:{TestInternet.OtherPublicHost} https://{Pkgs}/"));
        var hosts = await sandbox.ShAsync($"echo '{TestInternet.OtherPublicHost} {Pkgs}' >> /etc/hosts && curl -sS --max-time 20 http://{Pkgs}/");
        Assert.StartsWith($"hello from {TestInternet.PublicHost} for {Pkgs}", hosts.Stdout);

        // An IP literal is decided by address: no rule allows it.
        var literal = await sandbox.ShAsync($"curl -s --max-time 20 -w '%{{http_code}}' http://{TestInternet.OtherPublicHost}/");
        Assert.EndsWith("403", literal.Stdout);
        Assert.Contains("no rule allows it", literal.Stdout);

        // Other ports of the allowed name's address are not web traffic: refused at once.
        Assert.StartsWith("exit 7", await CurlAsync(sandbox, $"telnet://{TestInternet.PublicHost}:7"));

        var events = await fixture.Server.Client.GetEventsAsync(sandbox.Id);
        Assert.Contains(events, e => e.Kind == "network.refused" && e.Message.Contains("no rule allows it", StringComparison.Ordinal));
        Assert.True((await fixture.Server.Client.GetMetricsAsync(sandbox.Id)).NetworkRefused >= 1);
    }

    [Fact]
    public async Task DenyAll_ResolvesNothing_SoDnsCarriesNothingOut()
    {
        await using var sandbox = await CreateAsync(With(internet: false));
        var secret = "s" + Guid.NewGuid().ToString("N")[..16];

        var lookup = await sandbox.ShAsync($"python3 -c \"import socket; socket.getaddrinfo('{secret}.{TestInternet.Domain}', 80)\" 2>&1; curl -sS --max-time 10 http://{TestInternet.PublicHost}/ 2>&1");

        Assert.Contains("gaierror", lookup.Stdout);
        Assert.Contains("Failed to connect", lookup.Stdout);
        Assert.DoesNotContain(secret, TestInternet.Queries);
        var events = await fixture.Server.Client.GetEventsAsync(sandbox.Id);
        Assert.Contains(events, e => e.Kind == "network.refused" && e.Message.Contains("the sandbox has no network access", StringComparison.Ordinal));
        Assert.Contains(events, e => e.Kind == "network.refused" && e.Message.Contains($"a DNS lookup of {secret}.{TestInternet.Domain}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DenyRule_BeatsTheInternet_AndAllowBeatsDeny()
    {
        await using var sandbox = await CreateAsync(With(internet: true, allow: [TestInternet.PublicHost], deny: ["198.51.100.0/24", $"*.{TestInternet.Domain}"]));

        Assert.StartsWith("hello", await CurlAsync(sandbox, $"http://{TestInternet.PublicHost}/"));
        Assert.StartsWith("exit 7", await CurlAsync(sandbox, $"telnet://{TestInternet.OtherPublicHost}:7")); // the kernel refuses
        Assert.StartsWith("Cordon refused", await CurlAsync(sandbox, $"http://{TestInternet.OtherPublicHost}/")); // the proxy (web, domain rules)
        Assert.StartsWith("exit 6", await CurlAsync(sandbox, $"http://{TestInternet.OtherName}/"));

        // The kernel's refusal is counted and named too (its counters are read when metrics or events are asked for).
        Assert.True((await fixture.Server.Client.GetMetricsAsync(sandbox.Id)).NetworkRefused >= 2);
        var events = await fixture.Server.Client.GetEventsAsync(sandbox.Id);
        Assert.Contains(events, e => e.Kind == "network.refused" && e.Message.Contains("packet(s), denied by rule '198.51.100.0/24'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PolicyChange_CutsAnOpenProxiedConnection()
    {
        await using var sandbox = await CreateAsync(With(internet: true, allow: [Pkgs]));
        var events = fixture.Server.Client.ExecStreamAsync(sandbox.Id, ExecRequestBody.FromShell($"curl -sN --max-time 50 http://{Pkgs}/drip/45; echo curl-exit=$?") with { TimeoutSeconds = 60 })
            .GetAsyncEnumerator();
        var seen = "";
        while (events.Current?.Type != "stdout" || !(events.Current.Data ?? "").Contains("drip", StringComparison.Ordinal))
        {
            Assert.True(await events.MoveNextAsync(), "the stream ended before the first drip: " + seen);
            seen += $"{events.Current!.Type}:{events.Current.Data}{events.Current.Message} ";
        }

        await fixture.Server.Client.SetNetworkAsync(sandbox.Id, new NetworkPolicy { Internet = false });

        var output = "";
        while (await events.MoveNextAsync())
        {
            output += events.Current.Data;
        }

        Assert.Matches("curl-exit=(18|52|56)", output); // cut, not the 28 of its own 50 s limit
        Assert.False((await fixture.Server.Client.GetNetworkAsync(sandbox.Id)).Internet);
    }

    /// <summary>The proxy keeps at most 512 of a sandbox's connections open and reads at most 16 KiB before it knows a
    /// name: beyond either, connections are reset at once instead of held or buffered.</summary>
    [Fact]
    public async Task Proxy_BoundsConnectionsAndBytesBeforeAName()
    {
        await using var sandbox = await CreateAsync(With(internet: false, allow: [Pkgs]));
        const string Script = """
            import socket, time
            held = []
            for _ in range(600):
                s = socket.create_connection(("198.51.100.11", 80), timeout=5)
                held.append(s)
            reset = 0
            for s in held:
                s.settimeout(0.5)
                try:
                    if s.recv(1) == b"":
                        reset += 1
                except ConnectionResetError:
                    reset += 1
                except socket.timeout:
                    pass
            for s in held:
                s.close()
            time.sleep(1)
            s = socket.create_connection(("198.51.100.11", 80), timeout=5)
            s.settimeout(15)
            try:
                s.sendall(b"GET /" + b"a" * 20000)
                answer = s.recv(100)
                outcome = "closed" if answer == b"" else "answered"
            except (ConnectionResetError, BrokenPipeError):
                outcome = "reset"
            except socket.timeout:
                outcome = "hung"
            print(reset, outcome)
            """;
        await fixture.Server.Client.WriteFileAsync(sandbox.Id, "/tmp/bounds.py", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(Script)));

        var result = await sandbox.ShAsync("python3 /tmp/bounds.py", 120);

        Assert.True(result.ExitCode == 0, result.Stderr);
        var fields = result.Stdout.Trim().Split(' ');
        Assert.InRange(int.Parse(fields[0], System.Globalization.CultureInfo.InvariantCulture), 600 - 512, 600);
        Assert.Equal("reset", fields[1]);
    }

    /// <summary>Web traffic that goes through the proxy (the policy has domain rules) still never reaches the host:
    /// the proxy connects from the host, so it refuses the host's own addresses whatever the policy allows.</summary>
    [Fact]
    public async Task ProxiedWebTraffic_NeverReachesTheHost()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Parse("198.51.100.254"), 80); // the host's end of the test link
        listener.Start();
        await using var sandbox = await CreateAsync(With(internet: true, allow: ["198.51.100.254"], deny: [$"*.{TestInternet.OtherName}"]));

        var refused = await CurlAsync(sandbox, "http://198.51.100.254/");

        Assert.StartsWith("Cordon refused", refused);
        Assert.Contains("the host or a sandbox", refused, StringComparison.Ordinal);
        Assert.False(listener.Pending(), "a proxied connection from the sandbox reached a host service");
    }

    [Fact]
    public async Task BadRules_AreClientErrorsThatSayWhy()
    {
        foreach (var rule in new[] { "not a rule!", "10.0.0.0/33", "pypi.org:0", "pypi.org:90-80", "::1", "" })
        {
            using var response = await fixture.Server.Http.PostAsJsonAsync("/v1/sandboxes", new { image = "default", network = new { allowOut = new[] { rule } } });
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("rule", await response.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        }
    }
}
