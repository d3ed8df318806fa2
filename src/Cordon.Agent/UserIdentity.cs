namespace Cordon.Agent;

/// <summary>Who a command runs as, resolved from the sandbox's own /etc/passwd and /etc/group.</summary>
/// <remarks>The agent is a static glibc binary: NSS (getpwnam …) would need the shared libraries of the
/// exact glibc it was linked with, so the files are read directly.</remarks>
internal sealed record UserIdentity(string Name, uint Uid, uint Gid, uint[] Groups, string Home, string Shell)
{
    public static readonly UserIdentity Root = new("root", 0, 0, [0], "/root", "/bin/sh");

    public bool IsRoot => Uid == 0 && Gid == 0;

    /// <summary>Resolves <c>name</c>, <c>uid</c>, <c>name:group</c> or <c>uid:gid</c>.</summary>
    /// <returns>null when the name is unknown.</returns>
    public static UserIdentity? Resolve(string spec)
    {
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var userPart = colon >= 0 ? spec[..colon] : spec;
        var groupPart = colon >= 0 ? spec[(colon + 1)..] : null;

        var passwd = ReadColonFile("/etc/passwd");
        string[]? entry = null;
        if (uint.TryParse(userPart, out var numericUid))
        {
            entry = passwd.FirstOrDefault(e => e.Length >= 7 && e[2] == userPart);
        }
        else
        {
            entry = passwd.FirstOrDefault(e => e.Length >= 7 && e[0] == userPart);
            if (entry is null)
            {
                return null;
            }
        }

        var uid = entry is not null ? uint.Parse(entry[2]) : numericUid;
        var gid = entry is not null ? uint.Parse(entry[3]) : numericUid;
        var name = entry?[0] ?? userPart;
        var home = entry?[5] is { Length: > 0 } h ? h : "/";
        var shell = entry?[6] is { Length: > 0 } s ? s : "/bin/sh";

        var groups = ReadColonFile("/etc/group");
        if (groupPart is not null)
        {
            if (uint.TryParse(groupPart, out var g))
            {
                gid = g;
            }
            else
            {
                var group = groups.FirstOrDefault(e => e.Length >= 3 && e[0] == groupPart);
                if (group is null)
                {
                    return null;
                }

                gid = uint.Parse(group[2]);
            }
        }

        // Supplementary groups: every group that lists the user by name, plus the primary group.
        var supplementary = new SortedSet<uint> { gid };
        foreach (var group in groups)
        {
            if (group.Length >= 4 && uint.TryParse(group[2], out var groupId)
                && group[3].Split(',', StringSplitOptions.RemoveEmptyEntries).Contains(name))
            {
                supplementary.Add(groupId);
            }
        }

        return new UserIdentity(name, uid, gid, [.. supplementary], home, shell);
    }

    private static List<string[]> ReadColonFile(string path)
    {
        try
        {
            return File.ReadLines(path)
                .Where(line => line.Length > 0 && line[0] != '#')
                .Select(line => line.Split(':'))
                .ToList();
        }
        catch (IOException)
        {
            return [];
        }
        catch (UnauthorizedAccessException)
        {
            return [];
        }
    }
}
