namespace Cordon.Client;

/// <summary>How a Dockerfile build runs (<see cref="CordonClient.BuildImageFromContextAsync"/>).</summary>
public sealed record ImageBuildOptions
{
    /// <summary>The Dockerfile's path in the context.</summary>
    public string Dockerfile { get; init; } = "Dockerfile";

    /// <summary>The stage to build; the last one when null.</summary>
    public string? Target { get; init; }

    /// <summary>Values of the Dockerfile's ARGs.</summary>
    public IReadOnlyDictionary<string, string> BuildArgs { get; init; } = new Dictionary<string, string>();

    /// <summary>Run every step, whatever the step cache holds.</summary>
    public bool NoCache { get; init; }

    /// <summary>A shell command every sandbox of the image starts in the background before its create answers.</summary>
    public string? StartCmd { get; init; }

    /// <summary>A shell command that succeeds once the start command's service is up; creates wait for it.</summary>
    public string? ReadyCmd { get; init; }

    /// <summary><c>internet</c> or <c>none</c> for the steps' traffic; the server's default when null.</summary>
    public string? Network { get; init; }
}
