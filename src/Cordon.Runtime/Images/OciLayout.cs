using System.Text.Json;

namespace Cordon.Runtime.Images;

/// <summary>Finds the linux/amd64 image in an OCI image layout (index → optional nested index → manifest).</summary>
internal static class OciLayout
{
    public sealed record Manifest(IReadOnlyList<string> LayerBlobs, ImageConfig Config);

    public static Manifest FindManifest(string layout)
    {
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(layout, "index.json")));
        var manifest = Resolve(layout, index.RootElement, depth: 0);
        using var config = JsonDocument.Parse(File.ReadAllText(BlobPath(layout, manifest.GetProperty("config").GetProperty("digest").GetString())));
        var blobs = manifest.GetProperty("layers").EnumerateArray()
            .Select(l => BlobPath(layout, l.GetProperty("digest").GetString()))
            .ToList();
        return new Manifest(blobs, LayerStore.ParseConfig(config.RootElement));
    }

    private static JsonElement Resolve(string layout, JsonElement document, int depth)
    {
        if (depth > 4)
        {
            throw new InvalidDataException("The OCI layout nests indexes too deeply.");
        }

        if (document.TryGetProperty("layers", out _))
        {
            return document.Clone();
        }

        if (!document.TryGetProperty("manifests", out var manifests) || manifests.GetArrayLength() == 0)
        {
            throw new InvalidDataException("The OCI layout's index lists no manifests.");
        }

        var chosen = manifests.EnumerateArray().FirstOrDefault(m =>
            !m.TryGetProperty("platform", out var p)
            || (p.GetProperty("os").GetString() == "linux" && p.GetProperty("architecture").GetString() == "amd64"));
        if (chosen.ValueKind == JsonValueKind.Undefined)
        {
            throw new InvalidDataException("The OCI layout holds no linux/amd64 image.");
        }

        using var next = JsonDocument.Parse(File.ReadAllText(BlobPath(layout, chosen.GetProperty("digest").GetString())));
        return Resolve(layout, next.RootElement, depth + 1);
    }

    private static string BlobPath(string layout, string? digest)
    {
        var parts = (digest ?? "").Split(':');
        if (parts.Length != 2 || parts[0] != "sha256" || parts[1].Length != 64 || !parts[1].All(char.IsAsciiHexDigitLower))
        {
            throw new InvalidDataException($"The OCI layout names an invalid digest '{digest}'.");
        }

        var path = Path.Combine(layout, "blobs", "sha256", parts[1]);
        return File.Exists(path) ? path : throw new InvalidDataException($"The OCI layout lacks the blob {digest}.");
    }
}
