using System.Text.RegularExpressions;
using Cordon.Testing;
using Xunit;

namespace Cordon.Security.Tests;

/// <summary>docs/threat-model.md has no promise without a test: every row of its table names tests, and every
/// test it names exists (a renamed or deleted test fails here, not silently in the document).</summary>
public sealed partial class ThreatModelTests
{
    [Fact]
    public void EveryPromise_NamesTestsThatExist()
    {
        var document = File.ReadAllLines(Path.Combine(TestPaths.RepositoryRoot, "docs", "threat-model.md"));
        var sources = Directory.EnumerateFiles(Path.Combine(TestPaths.RepositoryRoot, "tests"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .Select(File.ReadAllText)
            .ToList();
        var rows = document.Where(l => RowRegex().IsMatch(l)).ToList();
        var missing = new List<string>();

        foreach (var row in rows)
        {
            var cells = row.Split(" | ");
            var number = cells[0].TrimStart('|', ' ');
            var named = TestNameRegex().Matches(cells[^1]).Select(m => (Class: m.Groups[1].Value, Method: m.Groups[2].Value)).ToList();
            if (named.Count == 0)
            {
                missing.Add($"row {number} names no test");
            }

            foreach (var (type, method) in named)
            {
                var found = sources.Any(s => s.Contains($"class {type}", StringComparison.Ordinal)
                    && (method.Length == 0 || Regex.IsMatch(s, $@"class {type}\b[\s\S]*\b(Task|void) {method}\(")));
                if (!found)
                {
                    missing.Add($"row {number}: {type}{(method.Length > 0 ? "." + method : "")} does not exist");
                }
            }
        }

        Assert.True(rows.Count >= 30, $"only {rows.Count} rows were read");
        Assert.True(missing.Count == 0, string.Join("\n", missing));
    }

    [GeneratedRegex(@"^\| \d+ \|")]
    private static partial Regex RowRegex();

    /// <summary><c>`Class.Method`</c>, or <c>`Class`</c> for all of a class's cases.</summary>
    [GeneratedRegex(@"`([A-Z][A-Za-z0-9]+)(?:\.([A-Z][A-Za-z0-9_]+))?`")]
    private static partial Regex TestNameRegex();
}
