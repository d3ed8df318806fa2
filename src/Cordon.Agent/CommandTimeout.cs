using Cordon.Agent.Interop;

namespace Cordon.Agent;

/// <summary>Kills a command's process group when its timeout passes (no timeout: never).</summary>
internal sealed class CommandTimeout : IDisposable
{
    private readonly CancellationTokenSource? _timer;
    private readonly CancellationTokenRegistration _kill;
    private volatile bool _expired;

    public CommandTimeout(int pid, long? timeoutMs)
    {
        if (timeoutMs is > 0)
        {
            _timer = new CancellationTokenSource(TimeSpan.FromMilliseconds(timeoutMs.Value));
            _kill = _timer.Token.Register(() =>
            {
                _expired = true;
                Libc.kill(-pid, Libc.SIGKILL);
            });
        }
    }

    /// <summary>The timeout passed and the command was killed.</summary>
    public bool Expired => _expired;

    public void Dispose()
    {
        _kill.Dispose();
        _timer?.Dispose();
    }
}
