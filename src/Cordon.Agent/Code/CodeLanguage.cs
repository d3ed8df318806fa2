
namespace Cordon.Agent.Code;

/// <summary>A language a code context can speak, and the driver that serves it.</summary>
/// <param name="Name">The normalised language name.</param>
/// <param name="Program">The interpreter the driver runs on, looked up in the sandbox's PATH.</param>
internal sealed record CodeLanguage(string Name, string Program, string Driver)
{
    /// <summary>Accepts the common names of a language; any other name is looked up among the image's
    /// Jupyter kernels (by kernel name or by the language it declares) through the Python driver. <c>python</c>
    /// runs on IPython inside the driver; <c>python3</c>, the name of ipykernel's kernelspec, reaches the kernel
    /// itself through Jupyter messaging.</summary>
    /// <returns>Null when the name cannot be a language (empty, too long, odd characters).</returns>
    public static CodeLanguage? Parse(string? name)
    {
        var key = (name ?? "python").Trim().ToLowerInvariant();
        return key switch
        {
            "python" or "py" or "ipython" => new("python", "python3", "python_driver.py"),
            "javascript" or "js" or "node" or "nodejs" => new("javascript", "node", "node_driver.js"),
            "typescript" or "ts" => new("typescript", "node", "node_driver.js"),
            "bash" or "sh" or "shell" => new("bash", "bash", "bash_driver.sh"),
            _ when key.Length is > 0 and <= 64 && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '+')
                => new(key, "python3", "python_driver.py"),
            _ => null,
        };
    }

    /// <summary>The driver's command line; <paramref name="marker"/> is the end-of-run marker for drivers whose
    /// runs print on their own stdout and stderr (Bash, and Python run by the driver itself).</summary>
    public IReadOnlyList<string> Arguments(string marker) => Driver switch
    {
        "node_driver.js" => [Program, "-e", Source(Driver), "--", Name],
        "bash_driver.sh" => [Program, "--noprofile", "--norc", "-c", Source(Driver), "bash", marker],
        _ => [Program, "-u", "-c", Source(Driver), Name, marker],
    };

    /// <summary>Driver sources, read from the agent's resources on the first context start (resource lookup goes
    /// through reflection metadata: ~0.5 ms the agent's own start should not pay).</summary>
    private static readonly Lazy<Dictionary<string, string>> Sources = new(() =>
    {
        var sources = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in (string[])["python_driver.py", "node_driver.js", "bash_driver.sh"])
        {
            using var stream = typeof(CodeLanguage).Assembly.GetManifestResourceStream(name)
                ?? throw new InvalidOperationException($"The agent was built without its {name} driver.");
            using var reader = new StreamReader(stream);
            sources[name] = reader.ReadToEnd();
        }

        return sources;
    });

    private static string Source(string driver) => Sources.Value[driver];
}
