using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;

namespace Cordon.Server.Compat.E2b;

/// <summary>envd's polling watchers (CreateWatcher, GetWatcherEvents, RemoveWatcher; the Python SDK's way to watch a
/// directory): a watch kept on the server whose events wait in a buffer until they are fetched.</summary>
public sealed class EnvdWatchers(SandboxService sandboxes)
{
    /// <summary>Events kept per watcher between two polls; older ones are dropped.</summary>
    private const int MaxBuffered = 1_000;

    /// <summary>Characters of path names kept per watcher between two polls; older events are dropped.</summary>
    private const int MaxBufferedChars = 64 * 1024;

    private readonly ConcurrentDictionary<string, Watcher> _watchers = new(StringComparer.Ordinal);

    public async Task<string> CreateAsync(CallerIdentity caller, string sandboxId, string path, bool recursive, string? user, CancellationToken cancellationToken)
    {
        var session = await sandboxes.WatchDirectoryAsync(caller, sandboxId, path, recursive, user, cancellationToken);
        var watcher = new Watcher("w-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), sandboxId, caller.KeyId, session);
        _watchers[watcher.Id] = watcher;

        // A watch ends with its sandbox; nobody will remove it then.
        _ = watcher.Ended.ContinueWith(_ => _watchers.TryRemove(watcher.Id, out var _), TaskScheduler.Default);
        return watcher.Id;
    }

    /// <summary>The events since the last poll (and forgets them).</summary>
    public JsonArray Take(CallerIdentity caller, string sandboxId, string id) => Find(caller, sandboxId, id).Take();

    public async Task RemoveAsync(CallerIdentity caller, string sandboxId, string id)
    {
        var watcher = Find(caller, sandboxId, id);
        _watchers.TryRemove(id, out _);
        await watcher.DisposeAsync();
    }

    private Watcher Find(CallerIdentity caller, string sandboxId, string id)
        => _watchers.TryGetValue(id, out var watcher) && watcher.SandboxId == sandboxId && caller.CanSee(watcher.Owner)
            ? watcher
            : throw new ConnectException("not_found", $"watcher with id {id} not found");

    private sealed class Watcher : IAsyncDisposable
    {
        private readonly DirectoryWatch _session;
        private readonly CancellationTokenSource _stop = new();
        private readonly Lock _lock = new();
        private readonly Queue<(JsonObject Event, int Chars)> _events = new();
        private int _chars;
        private readonly Task _pump;

        public Watcher(string id, string sandboxId, string owner, DirectoryWatch session)
        {
            Id = id;
            SandboxId = sandboxId;
            Owner = owner;
            _session = session;
            _pump = PumpAsync();
        }

        public string Id { get; }

        public string SandboxId { get; }

        public string Owner { get; }

        /// <summary>Completes when the watch ended (removed, or its sandbox is gone).</summary>
        public Task Ended => _pump;

        public JsonArray Take()
        {
            lock (_lock)
            {
                var taken = new JsonArray([.. _events.Select(e => e.Event)]);
                _events.Clear();
                _chars = 0;
                return taken;
            }
        }

        private async Task PumpAsync()
        {
            try
            {
                await foreach (var e in _session.ReadEventsAsync(_stop.Token))
                {
                    var chars = e.Name.Length;
                    lock (_lock)
                    {
                        _events.Enqueue((Envd.FilesystemEvent(e), chars));
                        _chars += chars;
                        while (_events.Count > MaxBuffered || _chars > MaxBufferedChars)
                        {
                            _chars -= _events.Dequeue().Chars;
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or CordonException or ObjectDisposedException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _session.DisposeAsync();
            await _pump;
            _stop.Dispose();
        }
    }
}
