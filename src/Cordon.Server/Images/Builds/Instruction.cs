namespace Cordon.Server.Images.Builds;

/// <summary>One Dockerfile instruction, continuation lines joined.</summary>
/// <param name="Keyword">Upper case: <c>RUN</c>, <c>COPY</c> …</param>
/// <param name="Arguments">What follows the keyword and its flags, unprocessed (variables are expanded when the step
/// runs, with the values it sees).</param>
/// <param name="Flags">Its <c>--name=value</c> options (<c>--from</c>, <c>--chown</c> …).</param>
/// <param name="Exec">The JSON array form (<c>RUN ["make", "all"]</c>), or null for the shell form.</param>
/// <param name="Line">Where it starts (1-based).</param>
public sealed record Instruction(string Keyword, string Arguments, IReadOnlyDictionary<string, string> Flags, IReadOnlyList<string>? Exec, int Line)
{
    /// <summary>How the build log shows it: the keyword, its flags and arguments, on one line.</summary>
    public string Text => string.Join(' ', new[] { Keyword }.Concat(Flags.Select(f => $"--{f.Key}={f.Value}")).Append(Exec is null ? Arguments : System.Text.Json.JsonSerializer.Serialize(Exec, AsWritten)));

    /// <summary>JSON as a person writes it (no <c>\u003E</c> for '>'): for reading only, never parsed as HTML.</summary>
    private static readonly System.Text.Json.JsonSerializerOptions AsWritten = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
