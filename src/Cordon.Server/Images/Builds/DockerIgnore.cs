using System.Text.RegularExpressions;

namespace Cordon.Server.Images.Builds;

/// <summary>A <c>.dockerignore</c>: which paths of a build context are left out. Patterns as COPY's (with <c>**</c>),
/// relative to the context's root; a pattern that matches a directory leaves out all of it; <c>!pattern</c> takes
/// paths back; the last pattern that matches decides.</summary>
public sealed class DockerIgnore
{
    private readonly List<(Regex Pattern, bool Exception)> _rules = [];

    public DockerIgnore(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var exception = line[0] == '!';
            var pattern = GlobPattern.Clean(exception ? line[1..].Trim() : line);
            if (!string.IsNullOrEmpty(pattern))
            {
                _rules.Add((GlobPattern.ToRegex(pattern), exception));
            }
        }
    }

    /// <summary>Some pattern takes paths back (<c>!</c>): an ignored directory may then hold paths that are not.</summary>
    public bool HasExceptions => _rules.Any(r => r.Exception);

    /// <summary>Whether the relative path (cleaned, '/'-separated) is left out.</summary>
    public bool Ignores(string path)
    {
        var ignored = false;
        foreach (var (pattern, exception) in _rules)
        {
            if (Matches(pattern, path))
            {
                ignored = !exception;
            }
        }

        return ignored;
    }

    /// <summary>The path or one of its parent directories matches.</summary>
    private static bool Matches(Regex pattern, string path)
    {
        for (var end = path.Length; end > 0; end = path.LastIndexOf('/', end - 1))
        {
            if (pattern.IsMatch(path[..end]))
            {
                return true;
            }
        }

        return false;
    }
}
