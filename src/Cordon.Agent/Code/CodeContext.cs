using System.Text;
using Cordon.Agent.Interop;
using Cordon.Protocol;

namespace Cordon.Agent.Code;

/// <summary>One code context: a live interpreter (a Jupyter kernel behind the Python driver, or Cordon's own
/// Node.js or Bash driver) that keeps its state between runs. Runs take turns; each streams its events.</summary>
/// <remarks>
/// The driver gets the context's channel as fd 3 (newline-delimited JSON, see Drivers/) and its stdout and
/// stderr as sockets. For Jupyter those two carry only the kernel's logs (kept for diagnostics); for the
/// other drivers they carry what child processes print, and for Bash everything the code prints, followed
/// by a marker after each run so that no output of a run arrives after its end.
/// </remarks>
internal sealed partial class CodeContext
{
    /// <summary>How long a run may ignore an interrupt before the interpreter is killed.</summary>
    private static readonly TimeSpan InterruptGrace = TimeSpan.FromSeconds(3);

    /// <summary>A Jupyter kernel imports a lot before it is ready; a cold machine needs more than a few seconds.</summary>
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);

    /// <summary>The longest event the driver may send (a large figure is a few MiB of base64).</summary>
    private const int MaxEventBytes = 64 << 20;

    /// <summary>The Python driver's exit status when its kernel died (see python_driver.py).</summary>
    private const int KernelDiedStatus = 3;

    private readonly CodeLanguage _language;
    private readonly UserIdentity _user;
    private readonly IReadOnlyDictionary<string, string>? _env;
    private readonly CommandRunner _launcher;
    private readonly SandboxEnvironment _environment;
    private readonly SemaphoreSlim _turn = new(1, 1);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Lock _lock = new();
    private readonly byte[] _marker = Encoding.ASCII.GetBytes($"\u001e\u001fcordon-{Guid.NewGuid():N}\u001e");

    private Instance? _instance;
    private RunState? _run;
    private int _executionCount;
    private string? _exitReason;

    private CodeContext(string id, CodeLanguage language, string cwd, UserIdentity user, IReadOnlyDictionary<string, string>? env, CommandRunner launcher, SandboxEnvironment environment)
    {
        Id = id;
        _language = language;
        Cwd = cwd;
        _user = user;
        _env = env;
        _launcher = launcher;
        _environment = environment;
    }

    public string Id { get; }

    public string Cwd { get; }

    public long CreatedAt { get; } = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public bool IsDead => _instance is null || _instance.Exit.IsCompleted;

    public static async Task<CodeContext> StartAsync(string id, CodeLanguage language, string cwd, UserIdentity user, IReadOnlyDictionary<string, string>? env,
        CommandRunner launcher, SandboxEnvironment environment, CancellationToken cancellationToken)
    {
        var context = new CodeContext(id, language, cwd, user, env, launcher, environment);
        await context.LaunchAsync(cancellationToken);
        return context;
    }

    public ContextInfo Info()
    {
        var instance = _instance;
        return new ContextInfo
        {
            Id = Id,
            Language = _language.Name,
            Kernel = instance?.Kernel,
            Cwd = Cwd,
            State = IsDead ? ContextStates.Dead : _run is not null ? ContextStates.Busy : ContextStates.Idle,
            ExecutionCount = _executionCount,
            Pid = instance?.Pid ?? 0,
            ExitReason = IsDead ? _exitReason ?? "the interpreter ended" : null,
            CreatedAt = CreatedAt,
        };
    }

    /// <summary>Replaces the interpreter with a fresh one; waits for a running run to end first (it is interrupted).</summary>
    public async Task RestartAsync(CancellationToken cancellationToken)
    {
        Interrupt();
        await _turn.WaitAsync(cancellationToken);
        try
        {
            await StopAsync();
            _executionCount = 0;
            _exitReason = null;
            await LaunchAsync(cancellationToken);
        }
        finally
        {
            _turn.Release();
        }
    }

    /// <summary>Kills the interpreter and every process it started.</summary>
    public async Task StopAsync()
    {
        var instance = _instance;
        if (instance is null)
        {
            return;
        }

        _exitReason ??= "the context was stopped";
        Libc.kill(-instance.Pid, Libc.SIGKILL);
        await instance.Exit;
        instance.Dispose();
    }

    /// <summary>Interrupts the current run, if any, the way the driver understands.</summary>
    public void Interrupt()
    {
        var instance = _instance;
        if (instance is null || _run is null || instance.Exit.IsCompleted)
        {
            return;
        }

        switch (instance.InterruptMode)
        {
            case "message":
                _ = SendAsync(instance, "{\"op\":\"interrupt\"}\n"u8.ToArray());
                break;
            case "group":
                Libc.kill(-instance.Pid, Libc.SIGINT);
                break;
            default:
                Libc.kill(instance.Pid, Libc.SIGINT);
                break;
        }
    }
}
