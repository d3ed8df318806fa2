namespace Cordon.Server.Images.Builds;

/// <summary>What a Dockerfile build asks for; every interface maps its own request onto this.</summary>
public sealed record BuildRequest
{
    /// <summary>The image it makes (replacing one of that name once it succeeds).</summary>
    public required string Name { get; init; }

    /// <summary>The Dockerfile's path in the context.</summary>
    public string Dockerfile { get; init; } = "Dockerfile";

    /// <summary>The stage to build (by name); the last one when null.</summary>
    public string? Target { get; init; }

    /// <summary>Values of the Dockerfile's ARGs.</summary>
    public IReadOnlyDictionary<string, string> Args { get; init; } = new Dictionary<string, string>();

    /// <summary>Run every step, whatever the step cache holds.</summary>
    public bool NoCache { get; init; }

    /// <summary>A shell command every sandbox of the image starts in the background (<see cref="Protocol.Api.ImageInfo.StartCmd"/>).</summary>
    public string? StartCmd { get; init; }

    /// <summary>A shell command that succeeds once the start command's service is up (<see cref="Protocol.Api.ImageInfo.ReadyCmd"/>).</summary>
    public string? ReadyCmd { get; init; }

    /// <summary>An image to pull from a registry before the steps run, when this server has no image of its name yet
    /// (E2B's <c>fromImage</c>); the Dockerfile's FROM names it by that name.</summary>
    public Protocol.Api.PullImageRequest? PullBase { get; init; }

    /// <summary>What the steps' traffic may reach; the server's default when null.</summary>
    public Network.EgressPolicy? Network { get; init; }
}
