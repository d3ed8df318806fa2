namespace Cordon.Server.Sandboxes;

/// <summary>How a code run ended; lowercase on the wire.</summary>
public enum CodeRunStatus
{
    Ok,
    Error,
    Interrupted,
    Timeout,

    /// <summary>The interpreter died; the context's state is lost.</summary>
    Died,
}
