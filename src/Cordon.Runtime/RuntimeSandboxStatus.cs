namespace Cordon.Runtime;

/// <summary>What a runtime sees of a sandbox.</summary>
public enum RuntimeSandboxStatus
{
    /// <summary>Its processes run.</summary>
    Running,

    /// <summary>Its processes are frozen.</summary>
    Paused,

    /// <summary>Its processes are gone but its file system is there: <see cref="ISandboxRuntime.StartAsync"/> can
    /// start it again.</summary>
    Stopped,

    /// <summary>Only leftovers remain (a host reboot unmounted its file system, or a creation was cut short).</summary>
    Leftover,
}
