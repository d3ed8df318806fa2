using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>What builds leave on the host: the step cache's snapshots stay while an image, a sandbox or the cache
/// uses them, and go once nothing does (a server of its own, whose unused snapshots go after 1 s).</summary>
public sealed class BuildCacheTests(BuildCacheTests.Server server) : IClassFixture<BuildCacheTests.Server>
{
    // Each test builds steps of its own: they share one server, whose cache would otherwise hand the second test the
    // first's steps (and then a build makes no snapshot at all).
    private const string Dockerfile = "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n";

    private const string CachedDockerfile = "FROM busybox\nRUN echo c > /c\nRUN echo d > /d\n";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private CordonClient Client => server.Fixture.Client;

    [Fact]
    public async Task Snapshots_StayWhileUsed_AndGoOnceNothingUsesThem()
    {
        var before = Snapshots();
        var image = await BuildAsync("gc-first");

        // One snapshot per step (the cache's), of which the image stands on the last (it holds both steps).
        var made = Snapshots().Except(before).ToHashSet();
        Assert.Equal(2, made.Count);
        Assert.Subset(made, image.Snapshots.ToHashSet());

        // A sandbox of the image holds it: the image cannot go, and emptying the cache takes only the other step's.
        var sandbox = await Client.CreateSandboxAsync(new CreateSandboxRequest { Image = "gc-first" }, Token);
        Assert.Equal(409, (await Assert.ThrowsAsync<CordonApiException>(() => Client.DeleteImageAsync("gc-first", Token))).Status);
        await Client.ClearBuildCacheAsync(Token);
        await WaitAsync(() => Snapshots().Intersect(made).SequenceEqual(image.Snapshots), "the step the image does not stand on to go");
        await Task.Delay(2500, Token); // past the grace, twice the housekeeper's period: the image's stays
        Assert.Subset(Snapshots(), image.Snapshots.ToHashSet());
        Assert.Equal("a\nb\n", (await Client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell("cat /a /b"), Token)).Stdout);
        await Client.DeleteSandboxAsync(sandbox.Id, Token);

        // The image gone and the cache empty, its snapshot goes too.
        await Client.DeleteImageAsync("gc-first", Token);
        await WaitAsync(() => !Snapshots().Overlaps(made), "the build's snapshots to go once nothing used them");
    }

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); !condition(); await Task.Delay(200, Token))
        {
            Assert.True(DateTime.UtcNow < deadline, $"Waited 30 s for {what}.");
        }
    }

    [Fact]
    public async Task Cache_OutlivesTheImage_AndForgetsTheLeastRecentlyUsedSteps()
    {
        var first = await BuildAsync("gc-cached", CachedDockerfile);
        await Client.DeleteImageAsync("gc-cached", Token);

        // The cache still holds the steps: a rebuild takes them, and stands on the same snapshots.
        var again = await BuildAsync("gc-cached-again", CachedDockerfile);
        Assert.Equal(first.Snapshots, again.Snapshots);

        // The cache keeps 4 steps (Cordon:BuildCacheEntries): three other builds of two steps push these out.
        for (var i = 0; i < 3; i++)
        {
            await BuildAsync($"gc-other-{i}", $"FROM busybox\nRUN echo {i} > /x\nRUN echo {i} > /y\n");
        }

        var evicted = await BuildAsync("gc-cached-third", CachedDockerfile);
        Assert.DoesNotContain(evicted.Snapshots, first.Snapshots.Contains);
    }

    private HashSet<string> Snapshots()
        => [.. server.Fixture.Server.App.Services.GetRequiredService<Runtime.ISandboxRuntime>().ListSnapshots()];

    private async Task<ImageInfo> BuildAsync(string name, string dockerfile = Dockerfile)
    {
        using var context = new MemoryStream();
        await using (var writer = new System.Formats.Tar.TarWriter(context, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true))
        {
            await writer.WriteEntryAsync(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "Dockerfile")
            {
                DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(dockerfile)),
            }, Token);
        }

        context.Position = 0;
        var started = await Client.BuildImageFromContextAsync(name, context, cancellationToken: Token);
        BuildEvent? last = null;
        await foreach (var e in Client.FollowBuildAsync(started.Name, 0, Token))
        {
            last = e;
        }

        Assert.True(last?.Status == "ready", last?.Message);
        return await Client.GetImageAsync(name, Token);
    }

    public sealed class Server : IAsyncLifetime
    {
        public ServerFixture Fixture { get; private set; } = null!;

        public async ValueTask InitializeAsync()
            => Fixture = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?>
            {
                ["Cordon:UnusedSnapshotGraceSeconds"] = "1",
                ["Cordon:BuildCacheEntries"] = "4",
            });

        public async ValueTask DisposeAsync() => await Fixture.DisposeAsync();
    }
}
