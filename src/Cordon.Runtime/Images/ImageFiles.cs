using Cordon.Runtime.Interop;

namespace Cordon.Runtime.Images;

/// <summary>Reads a file of an image on the host. SECURITY: an image is its owner's to shape, so nothing in it is
/// followed: the top-most layer holding something at the path (or on the way to it) decides, and only a regular file
/// reached through real directories is read — a link, a whiteout or a device hides the path.</summary>
public static class ImageFiles
{
    private const uint Directory = 0x4000;
    private const uint Regular = 0x8000;

    /// <param name="layers">The image's layer directories, bottom first.</param>
    /// <param name="relative">The path inside the image, without a leading slash.</param>
    /// <returns>The file's text, or null when the image has none there (or it is larger than <paramref name="maxBytes"/>).</returns>
    public static string? ReadText(IReadOnlyList<string> layers, string relative, long maxBytes)
    {
        var parts = relative.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var i = layers.Count - 1; i >= 0; i--)
        {
            var (text, decided) = InLayer(layers[i], parts, maxBytes);
            if (decided)
            {
                return text;
            }
        }

        return null;
    }

    /// <returns><c>Decided</c> false when the layer holds nothing at the path (a lower layer may).</returns>
    private static (string? Text, bool Decided) InLayer(string layer, string[] parts, long maxBytes)
    {
        var current = layer;
        for (var j = 0; j < parts.Length; j++)
        {
            current = Path.Combine(current, parts[j]);
            if (Syscalls.lstat(current, out var st) != 0)
            {
                return (null, false);
            }

            var type = st.Mode & Syscalls.S_IFMT;
            var last = j == parts.Length - 1;
            if (last ? type != Regular : type != Directory)
            {
                return (null, true);
            }

            if (last)
            {
                return ((long)st.Size <= maxBytes ? File.ReadAllText(current) : null, true);
            }
        }

        return (null, true);
    }
}
