namespace Cordon.Runtime.Images;

/// <summary>The defaults an image gives its sandboxes.</summary>
public sealed record ImageConfig
{
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();

    public string User { get; init; } = "root";

    public string WorkingDir { get; init; } = "/";
}
