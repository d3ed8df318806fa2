namespace Cordon.Server.Images.Builds;

/// <summary>Copies a caller's stream into a new file, stopping at a bound (a context or an upload the caller grows).</summary>
internal static class BoundedCopy
{
    /// <summary>Writes <paramref name="source"/> to a new file at <paramref name="path"/>.</summary>
    /// <returns>False, with the bytes up to the bound written, when the source holds more than <paramref name="maxBytes"/>.</returns>
    public static async Task<bool> ToNewFileAsync(Stream source, string path, long maxBytes, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        var buffer = new byte[1 << 16];
        long total = 0;
        int read;
        while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            total += read;
            if (total > maxBytes)
            {
                return false;
            }

            await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }

        return true;
    }
}
