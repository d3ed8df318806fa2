using Cordon.Server.Errors;
using Cordon.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Cordon.Server.Compat.E2b;

/// <summary>The E2B interface's one mapping of the service's failures: E2B's error body
/// (<c>{"code": status, "message": …}</c>, which the SDKs read) with E2B's status, or a Connect code for envd.</summary>
internal static class E2bErrors
{
    public static IResult Body(int status, string message)
        => Results.Json(new { code = status, message }, E2bControlPlane.Json, statusCode: status);

    public static IResult From(CordonException ex) => Body(StatusOf(ex.Code), ex.Message);

    /// <summary>E2B's status for each code: as REST's, except that an ended sandbox is simply not found (as on E2B,
    /// where a killed sandbox is gone).</summary>
    public static int StatusOf(ErrorCode code) => code switch
    {
        ErrorCode.SandboxEnded => 404,
        _ => ErrorStatus.Of(code),
    };

    /// <summary>envd's Connect code for each code.</summary>
    public static ConnectException ToConnect(CordonException ex) => new(ex.Code switch
    {
        ErrorCode.InvalidRequest => "invalid_argument",
        ErrorCode.ResultTooLarge => "resource_exhausted",
        ErrorCode.Unauthorized => "unauthenticated",
        ErrorCode.AdminRequired or ErrorCode.PermissionDenied => "permission_denied",
        ErrorCode.SandboxNotFound or ErrorCode.ImageNotFound or ErrorCode.KeyNotFound or ErrorCode.SecretNotFound or ErrorCode.CommandNotFound
            or ErrorCode.SnapshotNotFound or ErrorCode.VolumeNotFound or ErrorCode.ContextNotFound or ErrorCode.FileNotFound => "not_found",
        ErrorCode.AlreadyExists => "already_exists",
        ErrorCode.SandboxCreating or ErrorCode.SandboxPaused or ErrorCode.SandboxStopped or ErrorCode.SnapshotInUse or ErrorCode.VolumeInUse or ErrorCode.Conflict or ErrorCode.CommandEnded or ErrorCode.NoTerminal => "failed_precondition",
        ErrorCode.DiskFull or ErrorCode.HostDiskFull or ErrorCode.QuotaExceeded => "resource_exhausted",
        ErrorCode.SandboxEnded or ErrorCode.SandboxUnreachable or ErrorCode.PortUnreachable or ErrorCode.RuntimeFailed => "unavailable",
        _ => "internal",
    }, ex.Message);
}
