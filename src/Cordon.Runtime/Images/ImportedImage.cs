namespace Cordon.Runtime.Images;

/// <summary>The result of importing an image: its layers (bottom first), config and unpacked size.</summary>
public sealed record ImportedImage(IReadOnlyList<string> Layers, ImageConfig Config, long SizeBytes);
