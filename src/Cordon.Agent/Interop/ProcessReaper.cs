using System.Runtime.InteropServices;

namespace Cordon.Agent.Interop;

/// <summary>As PID 1 the agent inherits every orphan in the sandbox. One thread (the main one) reaps all children and
/// hands the exit status of the ones the agent started to whoever waits for them.</summary>
internal sealed class ProcessReaper
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, TaskCompletionSource<int>> _waiters = [];
    private readonly SemaphoreSlim _childStarted = new(0);

    /// <summary>Starts a child under the reaper's lock, so its exit cannot be reaped before it is awaited.</summary>
    public (int Pid, Task<int> Exit) Start(Func<int> spawn)
    {
        var done = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        int pid;
        lock (_lock)
        {
            pid = spawn();
            _waiters[pid] = done;
        }

        _childStarted.Release();
        return (pid, done.Task);
    }

    /// <summary>Reaps forever on the calling thread.</summary>
    public void Run()
    {
        while (true)
        {
            var pid = Libc.waitpid(-1, out var status, 0);
            if (pid > 0)
            {
                TaskCompletionSource<int>? waiter;
                lock (_lock)
                {
                    if (_waiters.Remove(pid, out waiter))
                    {
                        waiter.TrySetResult(status);
                    }
                }

                continue;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.ECHILD)
            {
                // No children: sleep until one is started (orphans only ever arrive while a child lives).
                _childStarted.Wait();
            }
        }
    }
}
