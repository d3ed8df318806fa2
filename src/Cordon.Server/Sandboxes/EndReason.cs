namespace Cordon.Server.Sandboxes;

/// <summary>Why a sandbox ended; in its history and, lowercase, as <c>endReason</c> on the wire.</summary>
public enum EndReason
{
    /// <summary>Destroyed on request (REST, MCP, E2B, CLI).</summary>
    Deleted,

    /// <summary>Its timeout passed.</summary>
    Expired,

    /// <summary>It was gone when the server started (host reboot or crash).</summary>
    Lost,

    /// <summary>Its agent never answered after the start.</summary>
    Failed,

    /// <summary>Its agent (PID 1) exited while it ran: killed by the out-of-memory killer, or crashed. Everything in
    /// it stopped with it.</summary>
    Exited,
}
