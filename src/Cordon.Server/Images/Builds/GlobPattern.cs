using System.Text;
using System.Text.RegularExpressions;

namespace Cordon.Server.Images.Builds;

/// <summary>The path patterns of COPY sources and <c>.dockerignore</c>: <c>*</c> and <c>?</c> within one path
/// component, <c>[a-z]</c> / <c>[^a-z]</c> classes, <c>\</c> escapes, and <c>**</c> for any number of components.</summary>
public static class GlobPattern
{
    public static bool HasWildcards(string pattern) => pattern.IndexOfAny(['*', '?', '[']) >= 0;

    /// <summary>A regular expression that matches exactly the paths the pattern matches.</summary>
    /// <exception cref="DockerfileException">An unclosed <c>[</c>.</exception>
    public static Regex ToRegex(string pattern)
    {
        var regex = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*' when i + 1 < pattern.Length && pattern[i + 1] == '*':
                    i++;
                    if (i + 1 < pattern.Length && pattern[i + 1] == '/')
                    {
                        i++;
                        regex.Append("(?:.*/)?"); // "**/" also matches no directory at all
                    }
                    else
                    {
                        regex.Append(".*");
                    }

                    break;
                case '*':
                    regex.Append("[^/]*");
                    break;
                case '?':
                    regex.Append("[^/]");
                    break;
                case '[':
                    var close = pattern.IndexOf(']', i + 2);
                    if (close < 0)
                    {
                        throw new DockerfileException($"the pattern '{pattern}' has a '[' without ']'");
                    }

                    var set = pattern[(i + 1)..close];
                    regex.Append('[').Append(set[0] is '^' or '!' ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                    i = close;
                    break;
                case '\\' when i + 1 < pattern.Length:
                    regex.Append(Regex.Escape(pattern[++i].ToString()));
                    break;
                default:
                    regex.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }

        return new Regex(regex.Append('$').ToString(), RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
    }

    /// <summary>A relative path in canonical form: no leading <c>./</c> or <c>/</c>, no <c>.</c> components, no trailing
    /// <c>/</c>; "" for the root. Null when it would leave the root (<c>..</c> above it).</summary>
    public static string? Clean(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count == 0)
                {
                    return null;
                }

                parts.RemoveAt(parts.Count - 1);
                continue;
            }

            parts.Add(part);
        }

        return string.Join('/', parts);
    }
}
