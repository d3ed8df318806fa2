using System.Collections.Concurrent;
using Cordon.Server.Auth;

namespace Cordon.Server.Compat.E2b;

/// <summary>The E2B template builds this server was asked for, by build id, from their request until a day later
/// (their images stay; only the ids the SDK polls with are forgotten).</summary>
public sealed class E2bTemplateBuilds
{
    private static readonly TimeSpan Kept = TimeSpan.FromDays(1);

    /// <summary>Build ids remembered at most (a caller could otherwise grow the table with requests): the oldest go.</summary>
    private const int MaxKept = 1000;

    private readonly ConcurrentDictionary<string, E2bTemplates.TemplateBuild> _builds = new(StringComparer.Ordinal);

    internal void Add(E2bTemplates.TemplateBuild build)
    {
        _builds[build.BuildId] = build;
        var byAge = _builds.Values.OrderBy(b => b.RequestedAt).ToList();
        foreach (var old in byAge.Where((b, i) => DateTimeOffset.UtcNow - b.RequestedAt > Kept || i < byAge.Count - MaxKept))
        {
            _builds.TryRemove(old.BuildId, out _);
        }
    }

    /// <summary>The build, when it is of that template and the caller may see it; else null.</summary>
    internal E2bTemplates.TemplateBuild? Find(string templateId, string buildId, CallerIdentity caller)
        => _builds.TryGetValue(buildId, out var build) && build.TemplateId == templateId && caller.CanSee(build.Owner) ? build : null;
}
