using Cordon.Server.Images.Builds;
using Cordon.Testing;
using Microsoft.Extensions.Options;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>E2B template uploads kept by hash: per key, and at most a build's worth (the least recently used go).</summary>
public sealed class TemplateFilesTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Uploads_ArePerKey_AndTheLeastRecentlyUsedGoPastTheBound()
    {
        var dataDir = TestPaths.NewTempDirectory("template-files");
        try
        {
            var files = new TemplateFiles(Options.Create(new CordonOptions { DataDir = dataDir, MaxUploadBytes = 1000 }));
            var (a, b, c) = (new string('a', 64), new string('b', 64), new string('c', 64));
            await files.SaveAsync("alice", a, new MemoryStream(new byte[400]), Token);
            await Task.Delay(20, Token);
            await files.SaveAsync("alice", b, new MemoryStream(new byte[400]), Token);
            await Task.Delay(20, Token);
            Assert.True(files.Has("alice", a)); // used again: now the most recent
            await Task.Delay(20, Token);
            await files.SaveAsync("alice", c, new MemoryStream(new byte[400]), Token);

            Assert.True(files.Has("alice", a));
            Assert.False(files.Has("alice", b)); // 1,200 bytes kept would pass the bound: the least recently used went
            Assert.True(files.Has("alice", c));
            Assert.False(files.Has("bob", a)); // another key's upload of that hash is not bob's
            await Assert.ThrowsAsync<InvalidDataException>(() => files.SaveAsync("alice", b, new MemoryStream(new byte[1001]), Token));
            Assert.False(files.Has("alice", b));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
