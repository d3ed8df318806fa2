using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Cordon.Runtime.Oci;

/// <summary>Closes namespace descriptors on a thread of its own: the last reference to a mount namespace frees its
/// mounts, which waits for an RCU grace period (namespace_unlock) — measured at 150 ms once a second on the CI VM. On
/// a thread-pool thread, a mass destroy would block a thread per sandbox; here they wait one after another, and
/// nothing else waits for them.</summary>
internal sealed class NamespaceReleaser : IDisposable
{
    private readonly BlockingCollection<SafeHandle> _queue = [];
    private readonly Thread _thread;

    public NamespaceReleaser()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "ns-release" };
        _thread.Start();
    }

    public void Release(SafeHandle handle)
    {
        try
        {
            _queue.Add(handle);
        }
        catch (InvalidOperationException)
        {
            handle.Dispose(); // stopping: closed here
        }
    }

    private void Run()
    {
        foreach (var handle in _queue.GetConsumingEnumerable())
        {
            handle.Dispose();
        }
    }

    /// <summary>Closes what is queued, then ends the thread.</summary>
    public void Dispose()
    {
        _queue.CompleteAdding();
        _thread.Join();
        _queue.Dispose();
    }
}
