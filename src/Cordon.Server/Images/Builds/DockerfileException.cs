namespace Cordon.Server.Images.Builds;

/// <summary>A Dockerfile Cordon cannot build: its syntax, or an instruction or option it does not support. The
/// message says which and, where there is one, what to write instead.</summary>
public sealed class DockerfileException(string message) : Exception(message)
{
    /// <summary>The line it is on (1-based), when known.</summary>
    public int? Line { get; init; }
}
