namespace Cordon.Server.Images.Builds;

/// <summary>A build step failed: the message says which and why; for a RUN, its exit code and last lines.</summary>
public sealed class BuildFailedException(string message) : Exception(message)
{
    public int? ExitCode { get; init; }

    public IReadOnlyList<string>? LastLines { get; init; }
}
