using Cordon.Server;
using Cordon.Server.State;
using Cordon.Testing;
using Microsoft.Extensions.Options;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The database does not grow without bound (review finding 11): a sandbox's history keeps its newest
/// entries, and the audit log its recent ones.</summary>
public sealed class StateStoreTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDirectory("state");

    [Fact]
    public void Events_BeyondTheCap_KeepTheNewest()
    {
        var store = new StateStore(Options.Create(new CordonOptions { DataDir = _dir }));
        for (var i = 0; i < StateStore.MaxEventsPerSandbox + 150; i++)
        {
            store.AddEvent("sbx", "timeout", $"event {i}");
        }

        store.AddEvent("other", "started", "a neighbour's history is its own");
        var events = store.LoadEvents("sbx");

        Assert.Equal(StateStore.MaxEventsPerSandbox, events.Count);
        Assert.Equal("event 150", events[0].Message);
        Assert.Equal($"event {StateStore.MaxEventsPerSandbox + 149}", events[^1].Message);
        Assert.Single(store.LoadEvents("other"));
    }

    [Fact]
    public void Audit_OlderThanItsRetention_IsPurged()
    {
        var store = new StateStore(Options.Create(new CordonOptions { DataDir = _dir }));
        store.Audit("key_a", "create", "sbx", null);
        store.Audit("key_a", "delete", "sbx", null);
        var before = store.CountAudit();

        store.PurgeEnded(DateTimeOffset.UtcNow, auditBefore: DateTimeOffset.UtcNow.AddDays(-1));
        var kept = store.CountAudit();
        store.PurgeEnded(DateTimeOffset.UtcNow, auditBefore: DateTimeOffset.UtcNow.AddSeconds(1));

        Assert.Equal(2, before);
        Assert.Equal(2, kept);
        Assert.Equal(0, store.CountAudit());
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }
}
