using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>Users inside a sandbox and their home directories: the one place that resolves <c>~</c> and relative
/// paths, for every interface.</summary>
public static class SandboxUsers
{
    /// <summary>A user's home directory: <c>/root</c> for root, <c>/home/{name}</c> otherwise, as Debian's images and
    /// E2B's templates lay them out.</summary>
    public static string HomeOf(string? user) => user is null or "root" or "0" ? "/root" : "/home/" + user;

    /// <summary>Resolves <c>~</c>, <c>~/…</c> and relative paths against the user's home; absolute paths stay.</summary>
    /// <exception cref="CordonException">The path is empty.</exception>
    public static string Resolve(string? user, string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw CordonException.Invalid("path is missing: give an absolute path, or one relative to the user's home.");
        }

        var home = HomeOf(user);
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
        {
            return home + path[1..];
        }

        return path.StartsWith('/') ? path : home + "/" + path;
    }
}
