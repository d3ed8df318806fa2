using System.Text.Json;

namespace Cordon.Protocol.Api;

/// <summary>Body of <c>POST /v1/sandboxes/{id}/exec</c>.</summary>
public sealed record ExecRequestBody
{
    /// <summary>An argv array (<c>["ls","-l"]</c>) or a shell string (<c>"ls -l | wc -l"</c>, run by <c>/bin/sh -c</c>).</summary>
    public JsonElement Cmd { get; init; }

    public IReadOnlyDictionary<string, string>? Env { get; init; }

    public string? Cwd { get; init; }

    /// <summary>User name or uid; the image's default user when null.</summary>
    public string? User { get; init; }

    /// <summary>Text given to the command's standard input, which is then closed.</summary>
    public string? Stdin { get; init; }

    /// <summary>Kill the command after this many seconds; default 60.</summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>A command given as program and arguments.</summary>
    public static ExecRequestBody FromArgv(params string[] argv)
        => new() { Cmd = JsonSerializer.SerializeToElement(argv, ApiJsonContext.Default.StringArray) };

    /// <summary>A command given as one shell string.</summary>
    public static ExecRequestBody FromShell(string command)
        => new() { Cmd = JsonSerializer.SerializeToElement(command, ApiJsonContext.Default.String) };
}
