namespace Cordon.Runtime;

/// <summary>The runtime could not do what was asked. <see cref="Exception.Message"/> is safe to show a caller
/// (no host paths or command lines); <see cref="Detail"/> is for the log.</summary>
public sealed class SandboxRuntimeException : Exception
{
    public SandboxRuntimeException(string message, string? detail = null, Exception? inner = null)
        : base(message, inner)
    {
        Detail = detail;
    }

    public string? Detail { get; }
}
