namespace Cordon.Server.Images;

/// <summary>The states of an image.</summary>
public static class ImageStates
{
    public const string Ready = "ready";
    public const string Building = "building";
    public const string Failed = "failed";
}
