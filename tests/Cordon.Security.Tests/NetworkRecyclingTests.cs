using System.Net.Http.Json;
using System.Text.Json;
using Cordon.Testing;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>A destroyed sandbox's network (its namespace, interface and address) goes to a later sandbox, and
/// nothing of the sandbox before comes with it: no listener, no traffic counted, even from a tenant that kept its
/// listeners alive past its own processes (threat model row 55).</summary>
public sealed class NetworkRecyclingTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RecycledNetwork_KeepsNothingOfTheSandboxBefore()
    {
        // One namespace prepared ahead: a destroyed sandbox's comes back to the pool behind it, and a create soon after
        // the destroy gets it.
        await using var server = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?> { ["Runtime:PreparedNetworks"] = "1" });

        // A plain tenant: a listener, traffic through its interface, and connections its policy refuses (a reserved
        // range: counted per sandbox on the shared default-policy chain).
        var first = await server.CreateSandboxAsync();
        var address = await AddressAsync(first);
        Assert.Equal(0, (await first.ShAsync("setsid nc -l -p 7777 </dev/null >/dev/null 2>&1 & gw=$(ip route | awk '/default/ {print $3}'); for i in 1 2 3 4 5 6 7 8 9 10; do nc -w 1 $gw 1 </dev/null; nc -w 1 10.255.255.1 80 </dev/null; done; true")).ExitCode);
        Assert.Matches(@":1E61 0+:0000 0A ", (await first.ShAsync("cat /proc/net/tcp /proc/net/tcp6")).Stdout);
        var (_, firstSent) = await TrafficAsync(server, first.Id);
        Assert.True(firstSent >= 10 * 54, $"the first sandbox sent {firstSent} bytes"); // ten refused connections at least
        Assert.True(await RefusedAsync(server, first.Id) >= 10, "the reserved-range connections were not counted");
        await first.DisposeAsync();

        var heir = await HeirAsync(server, address);
        Assert.NotNull(heir); // the namespace was recycled
        await using (heir)
        {
            Assert.Equal("tcp-connect ECONNREFUSED\nunix-connect ECONNREFUSED", Answers(await Probe.RunAsync(heir, server, "reach-listeners")));
            Assert.DoesNotContain(" 0A ", (await heir.ShAsync("cat /proc/net/tcp /proc/net/tcp6")).Stdout, StringComparison.Ordinal);
            var (received, sent) = await TrafficAsync(server, heir.Id);
            Assert.True(sent < firstSent && received < firstSent, $"the heir counts {received} bytes received and {sent} sent; its predecessor sent {firstSent}");
            Assert.Equal(0, await RefusedAsync(server, heir.Id));
            Assert.DoesNotContain("network.refused", await server.Http.GetStringAsync($"/v1/sandboxes/{heir.Id}/events", Token), StringComparison.Ordinal);
        }

        // A hostile tenant: its listeners in flight in a unix socket nothing refers to once it exits, so they outlive
        // all its processes until the kernel's garbage collector finds them. Whichever later sandbox gets its address
        // (its namespace when the listeners were gone, a new one otherwise) reaches neither.
        var hostile = await server.CreateSandboxAsync();
        var hostileAddress = await AddressAsync(hostile);
        Assert.Equal("tcp-listen ok\nunix-listen ok\nin-flight ok", Answers(await Probe.RunAsync(hostile, server, "leave-listeners")));
        await hostile.DisposeAsync();
        if (await HeirAsync(server, hostileAddress) is { } next)
        {
            await using (next)
            {
                Assert.Equal("tcp-connect ECONNREFUSED\nunix-connect ECONNREFUSED", Answers(await Probe.RunAsync(next, server, "reach-listeners")));
            }
        }
    }

    /// <summary>New sandboxes until one has <paramref name="address"/> (null after eight): the pool hands out what it
    /// prepared ahead first, and takes the destroyed sandbox's namespace back on its own thread, a moment later on
    /// a busy machine. The others stay until the end, so that their namespaces do not come back ahead of it.</summary>
    private static async Task<TestSandbox?> HeirAsync(ServerFixture server, string address)
    {
        var others = new List<TestSandbox>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                var sandbox = await server.CreateSandboxAsync();
                if (await AddressAsync(sandbox) == address)
                {
                    return sandbox;
                }

                others.Add(sandbox);
                await Task.Delay(100, Token);
            }

            return null;
        }
        finally
        {
            foreach (var other in others)
            {
                await other.DisposeAsync();
            }
        }
    }

    private static async Task<string> AddressAsync(TestSandbox sandbox)
    {
        var result = await sandbox.ShAsync("ip -4 -o addr show dev eth0 | awk '{print $4}'");
        Assert.Equal(0, result.ExitCode);
        return result.Stdout.Trim();
    }

    private static async Task<(long Received, long Sent)> TrafficAsync(ServerFixture server, string id)
    {
        var metrics = await server.Http.GetFromJsonAsync<JsonElement>($"/v1/sandboxes/{id}/metrics", Token);
        return (metrics.GetProperty("networkReceivedBytes").GetInt64(), metrics.GetProperty("networkSentBytes").GetInt64());
    }

    private static async Task<long> RefusedAsync(ServerFixture server, string id)
        => (await server.Http.GetFromJsonAsync<JsonElement>($"/v1/sandboxes/{id}/metrics", Token)).GetProperty("networkRefused").GetInt64();

    private static string Answers(IReadOnlyDictionary<string, string> answers) => string.Join('\n', answers.Select(a => $"{a.Key} {a.Value}"));
}
