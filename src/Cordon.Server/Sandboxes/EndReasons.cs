namespace Cordon.Server.Sandboxes;

/// <summary>Why a sandbox ended; recorded in its history and returned as <c>endReason</c>.</summary>
public static class EndReasons
{
    public const string Deleted = "deleted";
    public const string Expired = "expired";
    public const string Lost = "lost";
    public const string Failed = "failed";
}
