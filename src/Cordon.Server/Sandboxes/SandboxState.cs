namespace Cordon.Server.Sandboxes;

/// <summary>Where a sandbox is in its life. On the wire (REST, events) the lowercase name.</summary>
public enum SandboxState
{
    Creating,
    Running,
    Paused,

    /// <summary>Its processes ended, its file system kept: it can start again.</summary>
    Stopped,
    Ended,
}
