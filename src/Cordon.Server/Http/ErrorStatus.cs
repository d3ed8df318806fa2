using Cordon.Server.Errors;

namespace Cordon.Server.Http;

/// <summary>The HTTP status of each error code, for the interfaces that answer over HTTP (REST's problem details,
/// E2B's error bodies).</summary>
public static class ErrorStatus
{
    public static int Of(ErrorCode code) => code switch
    {
        ErrorCode.InvalidRequest or ErrorCode.ResultTooLarge => 400,
        ErrorCode.Unauthorized => 401,
        ErrorCode.AdminRequired or ErrorCode.PermissionDenied => 403,
        ErrorCode.SandboxNotFound or ErrorCode.ImageNotFound or ErrorCode.KeyNotFound or ErrorCode.SecretNotFound or ErrorCode.CommandNotFound
            or ErrorCode.SnapshotNotFound or ErrorCode.VolumeNotFound or ErrorCode.ContextNotFound or ErrorCode.FileNotFound => 404,
        ErrorCode.SandboxCreating or ErrorCode.SandboxPaused or ErrorCode.SandboxStopped or ErrorCode.SnapshotInUse or ErrorCode.VolumeInUse or ErrorCode.AlreadyExists or ErrorCode.Conflict or ErrorCode.CommandEnded
            or ErrorCode.NoTerminal or ErrorCode.ImageReserved or ErrorCode.ImageInUse or ErrorCode.ImageBusy or ErrorCode.ImageFailed => 409,
        ErrorCode.SandboxEnded => 410,
        ErrorCode.QuotaExceeded => 429,
        ErrorCode.DiskFull or ErrorCode.HostDiskFull => 507,
        ErrorCode.PortUnreachable or ErrorCode.SandboxUnreachable or ErrorCode.AgentError or ErrorCode.ImageBuildFailed or ErrorCode.StartFailed => 502,
        ErrorCode.ImageNotReady or ErrorCode.RuntimeFailed or ErrorCode.CreateFailed or ErrorCode.MetricsUnavailable or ErrorCode.NetworkUnavailable
            or ErrorCode.SnapshotsUnavailable => 503,
        _ => 500,
    };
}
