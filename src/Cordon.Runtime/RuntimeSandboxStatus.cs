namespace Cordon.Runtime;

/// <summary>What a runtime sees of a sandbox.</summary>
public enum RuntimeSandboxStatus
{
    /// <summary>Its processes run.</summary>
    Running,

    /// <summary>Its processes are frozen.</summary>
    Paused,

    /// <summary>Its resources exist but its processes are gone (it died, or the host rebooted).</summary>
    Stopped,
}
