using System.Text.RegularExpressions;

namespace Cordon.Runtime.Images;

/// <summary>A registry image reference, checked and made fully qualified (<c>python:3.12</c> →
/// <c>docker.io/library/python:3.12</c>), as the distribution project's grammar defines it.</summary>
public sealed partial record ImageReference(string Registry, string Repository, string? Tag, string? Digest)
{
    /// <summary>The fully qualified reference, as skopeo's <c>docker://</c> transport takes it.</summary>
    public override string ToString()
        => $"{Registry}/{Repository}{(Tag is null ? "" : ":" + Tag)}{(Digest is null ? "" : "@" + Digest)}";

    /// <summary>The name an image pulled from here gets by default: the last path component and the tag (or the
    /// digest's first 12 hex digits), lowercase.</summary>
    public string DefaultName
    {
        get
        {
            var last = Repository[(Repository.LastIndexOf('/') + 1)..];
            var version = Tag ?? (Digest is null ? "latest" : Digest["sha256:".Length..][..12]);
            return $"{last}:{version}".ToLowerInvariant();
        }
    }

    /// <exception cref="FormatException">Not a reference (the message says what is wrong).</exception>
    public static ImageReference Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Length > 512)
        {
            throw new FormatException("An image reference is required (at most 512 characters), such as 'registry.example.com/team/app:1.2'.");
        }

        var match = ReferenceRegex().Match(text);
        if (!match.Success)
        {
            throw new FormatException($"'{text}' is not an image reference: use [registry[:port]/]path[:tag][@sha256:<64 hex digits>], lowercase path components.");
        }

        var host = match.Groups["host"].Success ? match.Groups["host"].Value : null;
        var path = match.Groups["path"].Value;

        // The first component is a registry only when it looks like a host: a dot, a port or localhost.
        string registry, repository;
        if (host is not null && (host.Contains('.') || host.Contains(':') || host == "localhost"))
        {
            registry = host;
            repository = path;
        }
        else
        {
            registry = "docker.io";
            repository = host is not null ? host + "/" + path : path.Contains('/') ? path : "library/" + path;
        }

        if (registry.Contains(':') && !HostRegex().IsMatch(registry))
        {
            throw new FormatException($"'{registry}' is not a registry host[:port].");
        }

        if (!RepositoryRegex().IsMatch(repository))
        {
            throw new FormatException($"'{repository}' is not a repository path: lowercase letters and digits, separated by '.', '_', '-' or '/'.");
        }

        var tag = match.Groups["tag"].Success ? match.Groups["tag"].Value : null;
        var digest = match.Groups["digest"].Success ? match.Groups["digest"].Value : null;
        return new ImageReference(registry, repository, tag ?? (digest is null ? "latest" : null), digest);
    }

    [GeneratedRegex(@"^(?:(?<host>[A-Za-z0-9][A-Za-z0-9.\-]*(?::[0-9]{1,5})?)/)?(?<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::(?<tag>[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$")]
    private static partial Regex ReferenceRegex();

    [GeneratedRegex(@"^[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?:[0-9]{1,5}$")]
    private static partial Regex HostRegex();

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")]
    private static partial Regex RepositoryRegex();
}
