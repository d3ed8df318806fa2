using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace Cordon.Testing;

/// <summary>Runs a node script from the tests' npm projects (clients nobody here wrote) and parses the one JSON
/// document it prints.</summary>
public static class NodeScript
{
    /// <param name="directory">The npm project under tests/ (mcp, e2b).</param>
    public static async Task<JsonElement> RunAsync(string directory, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        var token = TestContext.Current.CancellationToken;
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = Path.Combine(TestPaths.RepositoryRoot, "tests", directory),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        using var node = Process.Start(start)!;
        var stdout = node.StandardOutput.ReadToEndAsync(token);
        var stderr = node.StandardError.ReadToEndAsync(token);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(token);
        limit.CancelAfter(TimeSpan.FromMinutes(5));
        await node.WaitForExitAsync(limit.Token);

        // Bounded: output that never ends after node exited (a descendant holding its pipes) fails the test, never
        // hangs the run.
        var output = await stdout.WaitAsync(TimeSpan.FromSeconds(30), token);
        Assert.True(node.ExitCode == 0, $"tests/{directory}/{start.ArgumentList[0]} failed ({node.ExitCode}): "
            + (stderr.Wait(TimeSpan.FromSeconds(30), token) ? stderr.Result : "(its standard error did not end)") + "\n" + output);
        return JsonDocument.Parse(output).RootElement;
    }
}
