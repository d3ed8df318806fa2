using Cordon.Protocol.Api;

namespace Cordon.Server.Images.Builds;

/// <summary>A build that started: the image as it shows meanwhile, and the build's log.</summary>
public sealed record BuildStarted(ImageInfo Image, BuildLog Log);
