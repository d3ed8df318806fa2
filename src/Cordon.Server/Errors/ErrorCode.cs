namespace Cordon.Server.Errors;

/// <summary>Every expected failure the service reports, named by what went wrong, not by how an interface says
/// it. Each interface maps a code once, to its own shape: problem details and an HTTP status (REST,
/// <c>Api/ProblemMapping</c>), a tool error (MCP, <c>Mcp/ToolErrors</c>), E2B's error body or a Connect code
/// (<c>Compat/E2b/E2bErrors</c>). The wire name of a code is its snake_case name (<see cref="ErrorCodes.Name"/>),
/// stable across releases.</summary>
public enum ErrorCode
{
    /// <summary>A field of the request is missing, malformed or out of range; the message names it.</summary>
    InvalidRequest,

    /// <summary>No valid credentials came with the request.</summary>
    Unauthorized,

    /// <summary>The caller's key may not do this (an admin key is needed).</summary>
    AdminRequired,

    /// <summary>The sandbox refused a file operation for the user it runs as.</summary>
    PermissionDenied,

    SandboxNotFound,
    ImageNotFound,
    KeyNotFound,
    CommandNotFound,
    ContextNotFound,
    FileNotFound,
    SecretNotFound,
    SnapshotNotFound,
    VolumeNotFound,

    /// <summary>The sandbox is still being created.</summary>
    SandboxCreating,

    /// <summary>The sandbox is paused: resume it first.</summary>
    SandboxPaused,

    /// <summary>The sandbox is stopped (its files kept): start it first.</summary>
    SandboxStopped,

    /// <summary>Sandboxes or other snapshots still start from the snapshot.</summary>
    SnapshotInUse,

    /// <summary>Sandboxes still mount the volume.</summary>
    VolumeInUse,

    /// <summary>This host cannot take snapshots (see /health for why).</summary>
    SnapshotsUnavailable,

    /// <summary>The sandbox has ended; it cannot come back.</summary>
    SandboxEnded,

    /// <summary>What the request would create exists already.</summary>
    AlreadyExists,

    /// <summary>The sandbox refused because of the state of what the request names (e.g. a directory not empty).</summary>
    Conflict,

    /// <summary>The command has ended; it takes no input or signals any more.</summary>
    CommandEnded,

    /// <summary>Only a command started on a terminal can be resized.</summary>
    NoTerminal,

    /// <summary>The name belongs to the default image, which Cordon builds itself.</summary>
    ImageReserved,

    /// <summary>Sandboxes still run from the image.</summary>
    ImageInUse,

    /// <summary>The image is being imported or built right now.</summary>
    ImageBusy,

    /// <summary>The image's build or import failed; it must be built again.</summary>
    ImageFailed,

    /// <summary>The image is still being prepared; retry later.</summary>
    ImageNotReady,

    /// <summary>Building the image failed.</summary>
    ImageBuildFailed,

    /// <summary>The image's start command ended, or its ready command did not succeed in time, in a new sandbox.</summary>
    StartFailed,

    /// <summary>A limit of the server or of the caller's key is reached.</summary>
    QuotaExceeded,

    /// <summary>The sandbox's disk is full.</summary>
    DiskFull,

    /// <summary>The host has too little disk left to promise a new sandbox its disk.</summary>
    HostDiskFull,

    /// <summary>What the sandbox would answer is larger than one answer may be (a listing, a code result).</summary>
    ResultTooLarge,

    /// <summary>Nothing answered on the sandbox port.</summary>
    PortUnreachable,

    /// <summary>The connection to the sandbox's agent failed or broke.</summary>
    SandboxUnreachable,

    /// <summary>The sandbox's agent failed in a way it did not explain.</summary>
    AgentError,

    /// <summary>The isolation runtime refused (create, pause, resume).</summary>
    RuntimeFailed,

    /// <summary>Creating the sandbox failed for a reason the server log holds.</summary>
    CreateFailed,

    /// <summary>The sandbox's resource use cannot be read right now.</summary>
    MetricsUnavailable,

    /// <summary>This host gives sandboxes no network (see /health for why); only <c>none</c> can be asked for.</summary>
    NetworkUnavailable,
}
