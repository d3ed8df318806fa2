using System.Text;
using System.Text.Json;

namespace Cordon.Server.Images.Builds;

/// <summary>A parsed Dockerfile: the ARGs before the first FROM and its stages.</summary>
/// <remarks>Parsing checks the syntax and what Cordon's builder supports, so a build that starts does not fail on
/// step 7 of 9 for an instruction it could have refused at once.</remarks>
public sealed record Dockerfile(IReadOnlyList<Instruction> GlobalArgs, IReadOnlyList<BuildStage> Stages, char Escape)
{
    /// <summary>Longest Dockerfile taken, in characters.</summary>
    public const int MaxLength = 1 << 20;

    /// <summary>Most instructions in one Dockerfile.</summary>
    public const int MaxInstructions = 1000;

    private static readonly Dictionary<string, string[]> FlagsOf = new(StringComparer.Ordinal)
    {
        ["FROM"] = ["platform"],
        ["RUN"] = [],
        ["COPY"] = ["from", "chown", "chmod", "link"],
        ["ADD"] = ["chown", "chmod", "link"],
        ["ENV"] = [],
        ["ARG"] = [],
        ["WORKDIR"] = [],
        ["USER"] = [],
        ["CMD"] = [],
        ["ENTRYPOINT"] = [],
        ["SHELL"] = [],
        ["EXPOSE"] = [],
        ["LABEL"] = [],
        ["STOPSIGNAL"] = [],
        ["VOLUME"] = [],
        ["HEALTHCHECK"] = ["interval", "timeout", "start-period", "start-interval", "retries"],
        ["MAINTAINER"] = [],
    };

    private static readonly HashSet<string> JsonForms = ["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"];

    /// <summary>Parses a Dockerfile's text.</summary>
    /// <exception cref="DockerfileException">Its syntax, or something the builder does not support, with the line.</exception>
    public static Dockerfile Parse(string text)
    {
        if (text.Length > MaxLength)
        {
            throw new DockerfileException($"the Dockerfile is longer than {MaxLength} characters");
        }

        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var escape = '\\';
        var at = 0;

        // Parser directives: "# name=value" lines at the very top (a blank line, a comment or an instruction ends them).
        for (; at < lines.Length; at++)
        {
            var directive = System.Text.RegularExpressions.Regex.Match(lines[at], @"^#\s*([a-zA-Z]+)\s*=\s*(\S*)\s*$");
            if (!directive.Success)
            {
                break;
            }

            if (directive.Groups[1].Value.Equals("escape", StringComparison.OrdinalIgnoreCase))
            {
                escape = directive.Groups[2].Value switch
                {
                    "\\" => '\\',
                    "`" => '`',
                    _ => throw new DockerfileException("the escape directive takes \\ or `") { Line = at + 1 },
                };
            }
        }

        var instructions = new List<Instruction>();
        var current = new StringBuilder();
        var start = 0;
        for (; at < lines.Length; at++)
        {
            var line = lines[at];
            var trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed[0] == '#')
            {
                continue; // blank lines and comments, also between continuation lines
            }

            if (current.Length == 0)
            {
                start = at + 1;
            }

            var end = line.TrimEnd();
            if (end.Length > 0 && end[^1] == escape)
            {
                current.Append(end, 0, end.Length - 1).Append(' ');
                continue;
            }

            current.Append(line);
            instructions.Add(ParseInstruction(current.ToString(), start));
            current.Clear();
            if (instructions.Count > MaxInstructions)
            {
                throw new DockerfileException($"the Dockerfile has more than {MaxInstructions} instructions") { Line = start };
            }
        }

        if (current.Length > 0)
        {
            instructions.Add(ParseInstruction(current.ToString(), start));
        }

        return new Dockerfile([.. instructions.TakeWhile(i => i.Keyword == "ARG")], SplitStages(instructions), escape);
    }

    private static List<BuildStage> SplitStages(List<Instruction> instructions)
    {
        var stages = new List<BuildStage>();
        var rest = instructions.SkipWhile(i => i.Keyword == "ARG").ToList();
        if (rest.Count == 0)
        {
            throw new DockerfileException("the Dockerfile has no FROM: start it with FROM and an image (or ARGs, then FROM)");
        }

        if (rest[0].Keyword != "FROM")
        {
            throw new DockerfileException($"{rest[0].Keyword} comes before the first FROM: only ARG may") { Line = rest[0].Line };
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var instruction in rest)
        {
            if (instruction.Keyword != "FROM")
            {
                var last = stages[^1];
                stages[^1] = last with { Instructions = [.. last.Instructions, instruction] };
                continue;
            }

            // FROM image [AS name]
            var words = instruction.Arguments.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            string? name = null;
            if (words.Length == 3 && words[1].Equals("AS", StringComparison.OrdinalIgnoreCase))
            {
                name = words[2].ToLowerInvariant();
                if (!System.Text.RegularExpressions.Regex.IsMatch(name, "^[a-z][a-z0-9._-]{0,63}$") || !names.Add(name))
                {
                    throw new DockerfileException($"the stage name '{words[2]}' is not valid or is used twice (a letter, then letters, digits, '.', '_' or '-')") { Line = instruction.Line };
                }
            }
            else if (words.Length != 1)
            {
                throw new DockerfileException("FROM takes an image and, optionally, AS and a stage name") { Line = instruction.Line };
            }

            if (instruction.Flags.TryGetValue("platform", out var platform) && platform is not ("linux/amd64" or "$BUILDPLATFORM" or "$TARGETPLATFORM" or "${BUILDPLATFORM}" or "${TARGETPLATFORM}"))
            {
                throw new DockerfileException($"FROM --platform={platform}: Cordon builds linux/amd64 images only") { Line = instruction.Line };
            }

            stages.Add(new BuildStage(stages.Count, name, words[0], instruction, []));
        }

        return stages;
    }

    private static Instruction ParseInstruction(string text, int line)
    {
        text = text.Trim();
        var space = text.IndexOfAny([' ', '\t']);
        var keyword = (space < 0 ? text : text[..space]).ToUpperInvariant();
        var arguments = space < 0 ? "" : text[(space + 1)..].TrimStart();
        if (keyword == "ONBUILD")
        {
            throw new DockerfileException("ONBUILD is not supported: write the instructions into the Dockerfile that builds on this image") { Line = line };
        }

        if (!FlagsOf.TryGetValue(keyword, out var allowed))
        {
            throw new DockerfileException($"'{keyword}' is not a Dockerfile instruction Cordon knows") { Line = line };
        }

        var flags = new Dictionary<string, string>(StringComparer.Ordinal);
        while (arguments.StartsWith("--", StringComparison.Ordinal))
        {
            var flagEnd = arguments.IndexOfAny([' ', '\t']);
            var flag = flagEnd < 0 ? arguments[2..] : arguments[2..flagEnd];
            arguments = flagEnd < 0 ? "" : arguments[(flagEnd + 1)..].TrimStart();
            var equals = flag.IndexOf('=');
            var flagName = equals < 0 ? flag : flag[..equals];
            if (!allowed.Contains(flagName))
            {
                throw new DockerfileException(keyword == "RUN" && flagName is "mount" or "network" or "security"
                    ? $"RUN --{flagName} is not supported by Cordon's builder (each RUN runs in the build's sandbox, with the build's network)"
                    : $"{keyword} has no option --{flagName} that Cordon supports")
                { Line = line };
            }

            flags[flagName] = equals < 0 ? "true" : flag[(equals + 1)..];
        }

        if (arguments.StartsWith("<<", StringComparison.Ordinal) && keyword is "RUN" or "COPY" or "ADD")
        {
            throw new DockerfileException($"{keyword} with a here-document is not supported: put the lines in a file of the build context and COPY it, or join them with && and \\") { Line = line };
        }

        IReadOnlyList<string>? exec = null;
        if (JsonForms.Contains(keyword) && arguments.StartsWith('['))
        {
            try
            {
                exec = JsonSerializer.Deserialize<List<string>>(arguments);
            }
            catch (JsonException)
            {
                exec = null; // as Docker: not a JSON array of strings, so the shell form
            }
        }

        if (keyword is "SHELL" && exec is not { Count: > 0 })
        {
            throw new DockerfileException("SHELL takes a JSON array such as [\"/bin/bash\", \"-c\"]") { Line = line };
        }

        if (arguments.Length == 0 && keyword is not ("CMD" or "ENTRYPOINT"))
        {
            throw new DockerfileException($"{keyword} needs arguments") { Line = line };
        }

        return new Instruction(keyword, arguments, flags, exec, line);
    }
}
