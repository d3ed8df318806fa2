using Cordon.Server.Sandboxes;

namespace Cordon.Server.State;

/// <summary>A sandbox as the service tracks it: persisted in SQLite and held in memory while it lives. Only the
/// service touches it; every interface gets an immutable <see cref="Sandbox"/> view of it instead.</summary>
public sealed class SandboxRecord
{
    public required string Id { get; init; }

    /// <summary>Id of the API key that created it; only that key (and admin keys) can see it.</summary>
    public required string Owner { get; init; }

    public required string Image { get; init; }

    public required string Runtime { get; init; }

    public double Cpu { get; init; }

    public long MemoryMiB { get; init; }

    public long DiskMiB { get; init; }

    public int MaxProcesses { get; init; }

    /// <summary>The user commands run as when a request names none (the image's user).</summary>
    public string User { get; init; } = "root";

    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Its web ports are reachable without a credential (see <see cref="NewSandbox.PublicPorts"/>).</summary>
    public bool PublicPorts { get; init; }

    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>What its traffic may reach (changeable while it runs).</summary>
    public Network.EgressPolicy Network { get; set; } = Cordon.Server.Network.EgressPolicy.None;

    /// <summary>Connections its policy refused since this server started: the proxy's and the resolver's as they
    /// happen, the kernel's (packets) when its counters are read (<see cref="KernelRefusals"/>).</summary>
    public long NetworkRefused;

    /// <summary>The kernel's refusal counters as last read, by the refusing rule; they restart with each policy.</summary>
    public Dictionary<string, long> KernelRefusals { get; } = new(StringComparer.Ordinal);

    /// <summary>When the last refusal was written to its events (they are written at most once a second).</summary>
    public long LastRefusalEventTicks;

    public SandboxState State { get; set; } = SandboxState.Creating;

    /// <summary>Its timers (changeable while it lives).</summary>
    public SandboxTimers Timers { get; set; } = new();

    /// <summary>The snapshots its file system starts from, oldest first (empty for one from an image).</summary>
    public IReadOnlyList<string> Snapshots { get; init; } = [];

    /// <summary>The volumes mounted into it.</summary>
    public IReadOnlyList<SandboxVolume> Volumes { get; init; } = [];

    /// <summary>The environment its create asked for (secrets' placeholders, never their values), for its forks.</summary>
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();

    /// <summary>When it was stopped (its retention counts from then); null unless stopped.</summary>
    public DateTimeOffset? StoppedAt { get; set; }

    /// <summary>How many times this server started it (its create is the first): an agent check belongs to one start.
    /// Changed only under <see cref="Lifecycle"/>.</summary>
    public int Starts;

    /// <summary>When a request last reached it (<see cref="Environment.TickCount64"/>); its idle timer counts from the
    /// later of this and the end of its last running command, stream or connection.</summary>
    public long LastActivity = Environment.TickCount64;

    /// <summary>Commands, streams and proxied connections open now: while any is, it is never idle.</summary>
    public int Busy => Volatile.Read(ref _busy);

    private int _busy;

    /// <summary>Marks the sandbox busy until the result is disposed (a command, a stream, a connection).</summary>
    public IDisposable Hold()
    {
        Interlocked.Increment(ref _busy);
        LastActivity = Environment.TickCount64;
        return new Release(this);
    }

    private sealed class Release(SandboxRecord record) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                record.LastActivity = Environment.TickCount64;
                Interlocked.Decrement(ref record._busy);
            }
        }
    }

    public int TimeoutSeconds { get; set; }

    public DateTimeOffset? ExpiresAt { get; set; }

    public DateTimeOffset? EndedAt { get; set; }

    public EndReason? EndReason { get; set; }

    /// <summary>Serialises lifecycle changes (pause, resume, destroy) of this sandbox.</summary>
    public SemaphoreSlim Lifecycle { get; } = new(1, 1);

    /// <summary>The agent has answered a request since this server started it or adopted it: it runs.</summary>
    public bool AgentAnswered { get => Volatile.Read(ref _agentAnswered); set => Volatile.Write(ref _agentAnswered, value); }

    private bool _agentAnswered;

    /// <summary>An immutable view of the record as it is now.</summary>
    public Sandbox ToView() => new()
    {
        Id = Id,
        Owner = Owner,
        Image = Image,
        Runtime = Runtime,
        State = State,
        Cpu = Cpu,
        MemoryMiB = MemoryMiB,
        DiskMiB = DiskMiB,
        MaxProcesses = MaxProcesses,
        CreatedAt = CreatedAt,
        TimeoutSeconds = TimeoutSeconds,
        ExpiresAt = ExpiresAt,
        EndedAt = EndedAt,
        EndReason = EndReason,
        DefaultUser = User,
        Metadata = Metadata,
        PublicPorts = PublicPorts,
        Network = Network,
        Timers = Timers,
        Snapshots = Snapshots,
        Volumes = Volumes,
        StoppedAt = StoppedAt,
    };
}
