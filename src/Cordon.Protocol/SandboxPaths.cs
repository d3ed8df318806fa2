namespace Cordon.Protocol;

/// <summary>Rules for paths that name something inside a sandbox, shared by the server (to reject early) and the agent.</summary>
public static class SandboxPaths
{
    /// <summary>Longest path accepted, as Linux's PATH_MAX.</summary>
    public const int MaxLength = 4096;

    /// <summary>Checks that <paramref name="path"/> is absolute, has no <c>..</c> segment and no NUL byte.</summary>
    /// <returns>null when the path is acceptable, otherwise a message that says what to change.</returns>
    public static string? Validate(string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return "The path is empty: give an absolute path inside the sandbox, such as /home/user/file.txt.";
        }

        if (path.Length > MaxLength)
        {
            return $"The path is longer than {MaxLength} characters.";
        }

        if (path[0] != '/')
        {
            return $"The path '{path}' is relative: give an absolute path inside the sandbox, such as /home/user/{path}.";
        }

        if (path.Contains('\0', StringComparison.Ordinal))
        {
            return "The path contains a NUL character.";
        }

        foreach (var segment in path.Split('/'))
        {
            if (segment == "..")
            {
                return $"The path '{path}' contains '..': give the absolute path without parent references.";
            }
        }

        return null;
    }

    /// <summary>Collapses repeated and trailing slashes and <c>.</c> segments of a path that passed <see cref="Validate"/>.</summary>
    public static string Normalize(string path)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".");
        return "/" + string.Join('/', parts);
    }
}
