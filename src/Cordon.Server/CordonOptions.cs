using System.ComponentModel.DataAnnotations;

namespace Cordon.Server;

/// <summary>Server settings (section <c>Cordon</c>, env <c>Cordon__Name</c>); every one is listed in docs/configuration.md.</summary>
public sealed class CordonOptions
{
    /// <summary>The network a sandbox gets when its creator names none: <c>internet</c> (the public internet, never
    /// the host, other sandboxes or private ranges) or <c>none</c> (loopback only).</summary>
    [RegularExpression("^(internet|none)$", ErrorMessage = "Cordon:DefaultNetwork is internet or none.")]
    public string DefaultNetwork { get; set; } = "internet";

    /// <summary>The resolvers sandboxes' DNS queries are forwarded to; the host's own (/etc/resolv.conf) when empty.</summary>
    public string[] UpstreamDns { get; set; } = [];

    /// <summary>Registries (<c>host[:port]</c>) pulled from over plain HTTP or TLS that is not verified: a local
    /// registry without a certificate. Every other registry needs TLS with a certificate the host trusts.</summary>
    public string[] InsecureRegistries { get; set; } = [];

    /// <summary>A PEM file of certificate authorities the egress proxy trusts, besides the host's, when it opens a
    /// sandbox's HTTPS connection to put in a secret (a private registry's CA, say); none when empty.</summary>
    public string? UpstreamCaFile { get; set; }

    /// <summary>Where state (SQLite), images and sandboxes live.</summary>
    [Required]
    public string DataDir { get; set; } = "/var/lib/cordon";

    /// <summary>Host-wide cache of built images, shared by every data directory.</summary>
    public string CacheDir { get; set; } = "/var/cache/cordon";

    /// <summary>The image used when a create request names none.</summary>
    public string DefaultImage { get; set; } = "default";

    /// <summary>Build (or import from the cache) the default image in the background at start.</summary>
    public bool PrepareDefaultImage { get; set; } = true;

    /// <summary>Debian mirror the default image is built from.</summary>
    public string DebianMirror { get; set; } = "http://deb.debian.org/debian";

    /// <summary>Most sandboxes that may exist at once on this server.</summary>
    [Range(1, 4096)]
    public int MaxSandboxes { get; set; } = 256;

    [Range(1, 604800)]
    public int DefaultTimeoutSeconds { get; set; } = 300;

    [Range(1, 604800)]
    public int MaxTimeoutSeconds { get; set; } = 86400;

    [Range(1, 86400)]
    public int DefaultCommandTimeoutSeconds { get; set; } = 60;

    /// <summary>Most characters of stdout (and of stderr) kept of a command or code run that is not streamed, and
    /// of each stream of a background command: the first and the last half of that are kept.</summary>
    [Range(1024, 1 << 28)]
    public int MaxOutputChars { get; set; } = 4 << 20;

    /// <summary>Most characters of stdout (and of stderr) a background command keeps (MCP <c>run_command</c>, E2B
    /// processes), first and last half.</summary>
    [Range(1024, 1 << 28)]
    public int MaxBackgroundOutputChars { get; set; } = 1 << 20;

    /// <summary>Memory for command and code output the server holds at once, across every sandbox: what commands
    /// print is kept within it (head and tail, the middle left out and said so), and ended background commands
    /// are forgotten first when it runs low.</summary>
    [Range(16, 1 << 20)]
    public int MaxOutputMemoryMiB { get; set; } = 256;

    /// <summary>Most directory watches open at once in one sandbox (E2B's watchDir and its polling watchers).</summary>
    [Range(1, 4096)]
    public int MaxWatchesPerSandbox { get; set; } = 16;

    /// <summary>Most directory watches open at once on this server.</summary>
    [Range(1, 65536)]
    public int MaxWatches { get; set; } = 512;

    /// <summary>What each tenant key may hold and how fast it may call, unless the key has its own
    /// (<c>PUT /v1/keys/{id}/quotas</c>); section <c>Cordon:Quotas</c>. Fields left out keep the built-in defaults
    /// (<see cref="Auth.KeyQuotas.Defaults"/>).</summary>
    public Auth.KeyQuotas Quotas { get; set; } = new();

    /// <summary>Disk kept free on the data directory's file system beyond what every sandbox was promised: a create
    /// that would eat into it is refused (507), so sandboxes filling their disks never fill the host's.</summary>
    [Range(0, 1L << 30)]
    public long DiskReserveMiB { get; set; } = 2048;

    /// <summary>Background commands running at once on this server, across every key.</summary>
    [Range(1, 1 << 20)]
    public int MaxBackgroundCommands { get; set; } = 4096;

    /// <summary>Largest file upload accepted.</summary>
    public long MaxUploadBytes { get; set; } = 16L << 30;

    /// <summary>Upper bounds on what a create request may ask for.</summary>
    [Range(0.01, 1024)]
    public double MaxCpu { get; set; } = Environment.ProcessorCount;

    [Range(16, 1 << 30)]
    public long MaxMemoryMiB { get; set; } = 16384;

    [Range(16, 1 << 30)]
    public long MaxDiskMiB { get; set; } = 65536;

    [Range(8, 1 << 22)]
    public int MaxProcesses { get; set; } = 4096;

    /// <summary>How long a new sandbox's agent may take to answer before the sandbox is removed as failed.</summary>
    public TimeSpan AgentStartTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long after a sandbox starts the server asks its agent whether it runs, unless a request was
    /// answered meanwhile (see <see cref="AgentStartTimeout"/>).</summary>
    public TimeSpan AgentCheckDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Seconds a stopped sandbox is kept (its files on disk) before it is destroyed, unless its create or a
    /// PATCH says otherwise; 0 keeps stopped sandboxes until they are deleted.</summary>
    public int DefaultStoppedRetentionSeconds { get; set; } = 7 * 86400;

    /// <summary>Size of a volume whose create names none, in MiB.</summary>
    public long DefaultVolumeMiB { get; set; } = 1024;

    /// <summary>Largest volume, in MiB.</summary>
    public long MaxVolumeMiB { get; set; } = 256 * 1024;

    /// <summary>Most volumes one key may hold.</summary>
    public int MaxVolumesPerKey { get; set; } = 100;

    /// <summary>Sandboxes started ahead per image (<c>Cordon:WarmPools:default=4</c>), handed out by creates that
    /// ask for nothing a started sandbox cannot take on (docs/configuration.md). <c>PUT /v1/pools/{image}</c> changes
    /// a size at run time and is kept over this.</summary>
    public Dictionary<string, int> WarmPools { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Most sandboxes one warm pool may keep.</summary>
    public const int MaxWarmPoolSize = 64;

    /// <summary>Most images (pulled, imported, built, tags included) one tenant key may hold.</summary>
    [Range(0, 100_000)]
    public int MaxImagesPerKey { get; set; } = 100;

    /// <summary>Most named snapshots one key may hold.</summary>
    public int MaxSnapshotsPerKey { get; set; } = 100;

    /// <summary>Longest a new sandbox waits for its image's ready command to succeed (after starting its start
    /// command); then the create fails.</summary>
    [Range(1, 3600)]
    public int StartReadySeconds { get; set; } = 120;

    /// <summary>How long a snapshot of the server's own (a fork's, a build step's) is kept after nothing uses it any
    /// more — no sandbox, image or build cache entry — before its files are removed.</summary>
    [Range(1, 86400)]
    public int UnusedSnapshotGraceSeconds { get; set; } = 60;

    /// <summary>Longest an image build may take, all its steps together; a build still running then fails.</summary>
    [Range(10, 86400)]
    public int MaxBuildSeconds { get; set; } = 3600;

    /// <summary>Build steps the step cache remembers; the least recently used go first (and their snapshots once
    /// nothing else uses them).</summary>
    [Range(0, 100_000)]
    public int BuildCacheEntries { get; set; } = 1000;

    /// <summary>Memory of each sandbox a build runs its steps in (MiB; at most <see cref="MaxMemoryMiB"/>).</summary>
    [Range(64, 1 << 20)]
    public long BuildMemoryMiB { get; set; } = 2048;

    /// <summary>Disk of each sandbox a build runs its steps in (MiB; at most <see cref="MaxDiskMiB"/>): what one stage
    /// may add to its image.</summary>
    [Range(64, 1 << 24)]
    public long BuildDiskMiB { get; set; } = 8192;

    /// <summary>How long ended sandboxes stay visible (with their history) before they are forgotten.</summary>
    public TimeSpan EndedRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How long entries of the audit log (who created, paused, resumed, destroyed what) are kept.</summary>
    public TimeSpan AuditRetention { get; set; } = TimeSpan.FromDays(90);

    /// <summary>MCP: the most characters of output one tool result carries; the rest can be paged.</summary>
    [Range(1000, 10_000_000)]
    public int McpMaxOutputChars { get; set; } = 20_000;

    /// <summary>MCP: how long a session's sandbox may go without a tool call, command, stream or connection before it
    /// is paused (the next tool call resumes it, in ~2 ms).</summary>
    [Range(60, 86400)]
    public int McpSessionIdleSeconds { get; set; } = 1800;
}
