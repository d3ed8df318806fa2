using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Cordon.Runtime.Interop;

/// <summary>Tells when watched processes exit, whoever their parent is: a pidfd per process (readable once it
/// exits), all in one epoll set served by one thread, so watching costs nothing per process while it runs and
/// the same whether 10 or 10,000 are watched.</summary>
internal sealed unsafe partial class ExitWatcher : IDisposable
{
    private const int EpollCloexec = 0x80000;
    private const int EpollCtlAdd = 1;
    private const int EpollCtlDel = 2;
    private const uint EpollIn = 0x001;
    private const long SysPidfdOpen = 434;
    private const int Eintr = 4;

    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    private struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, EpollEvent* events, int maxEvents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, long a1, long a2);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    private readonly int _epoll;
    private readonly ConcurrentDictionary<ulong, (string Id, int Fd)> _watched = new();
    private readonly ConcurrentDictionary<string, ulong> _byId = new(StringComparer.Ordinal);
    private long _next;
    private volatile bool _disposed;
    private int _disposeCount;

    public ExitWatcher()
    {
        _epoll = epoll_create1(EpollCloexec);
        if (_epoll < 0)
        {
            throw new IOException("epoll_create1: " + Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError()));
        }

        new Thread(Loop) { IsBackground = true, Name = "cordon-exit-watcher" }.Start();
    }

    /// <summary>The epoll descriptor's number (for the test that a second dispose closes nothing).</summary>
    internal int EpollDescriptor => _epoll;

    /// <summary>Raised on the watcher's thread with the id of a watched process that exited; the watch is gone then.</summary>
    public event Action<string>? Exited;

    /// <summary>Watches <paramref name="pid"/> under <paramref name="id"/>, replacing an earlier watch of that id.</summary>
    /// <returns>False when the process is already gone (no pidfd could be opened).</returns>
    public bool Watch(string id, int pid)
    {
        Unwatch(id);
        var fd = (int)syscall(SysPidfdOpen, pid, 0);
        if (fd < 0)
        {
            return false;
        }

        var key = (ulong)Interlocked.Increment(ref _next);
        _watched[key] = (id, fd);
        _byId[id] = key;
        var ev = new EpollEvent { Events = EpollIn, Data = key };
        if (epoll_ctl(_epoll, EpollCtlAdd, fd, &ev) != 0)
        {
            Remove(id);
            return false;
        }

        return true;
    }

    /// <summary>Stops watching; an unknown id is fine.</summary>
    public void Unwatch(string id) => Remove(id);

    private void Remove(string id)
    {
        if (_byId.TryRemove(id, out var key) && _watched.TryRemove(key, out var watched))
        {
            epoll_ctl(_epoll, EpollCtlDel, watched.Fd, null);
            close(watched.Fd);
        }
    }

    private void Loop()
    {
        var events = stackalloc EpollEvent[64];
        while (!_disposed)
        {
            var n = epoll_wait(_epoll, events, 64, 1000);
            if (n < 0 && Marshal.GetLastPInvokeError() != Eintr)
            {
                return;
            }

            for (var i = 0; i < n; i++)
            {
                if (_watched.TryGetValue(events[i].Data, out var watched))
                {
                    Remove(watched.Id);
                    try
                    {
                        Exited?.Invoke(watched.Id);
                    }
                    catch (Exception)
                    {
                        // The handler logs its own failures; none may end the one thread that watches every sandbox.
                    }
                }
            }
        }
    }

    public void Dispose()
    {
        // Once only: a second close of the epoll descriptor would close whatever file has its number by then.
        if (Interlocked.Exchange(ref _disposeCount, 1) != 0)
        {
            return;
        }

        _disposed = true;
        foreach (var id in _byId.Keys)
        {
            Remove(id);
        }

        close(_epoll);
    }
}
