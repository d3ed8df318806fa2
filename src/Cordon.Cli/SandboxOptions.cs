using System.CommandLine;
using Cordon.Protocol.Api;

namespace Cordon.Cli;

/// <summary>The options that describe a new sandbox, shared by <c>run</c> and <c>sandbox create</c>.</summary>
internal sealed class SandboxOptions
{
    public Option<string?> Image { get; } = new("--image", "-i") { Description = "Image name (default: the server's default image)." };

    public Option<double?> Cpu { get; } = new("--cpu") { Description = "CPU cores." };

    public Option<long?> Memory { get; } = new("--memory") { Description = "Memory limit in MiB." };

    public Option<long?> Disk { get; } = new("--disk") { Description = "Writable layer size in MiB." };

    public Option<int?> Timeout { get; } = new("--timeout") { Description = "Sandbox lifetime in seconds." };

    public Option<string[]> Env { get; } = new("--env", "-e") { Description = "KEY=VALUE environment variable (repeatable).", AllowMultipleArgumentsPerToken = false };

    public void AddTo(Command command)
    {
        command.Options.Add(Image);
        command.Options.Add(Cpu);
        command.Options.Add(Memory);
        command.Options.Add(Disk);
        command.Options.Add(Timeout);
        command.Options.Add(Env);
    }

    public CreateSandboxRequest ToRequest(ParseResult parse) => new()
    {
        Image = parse.GetValue(Image),
        Cpu = parse.GetValue(Cpu),
        MemoryMiB = parse.GetValue(Memory),
        DiskMiB = parse.GetValue(Disk),
        TimeoutSeconds = parse.GetValue(Timeout),
        Env = CliOutput.ParsePairs(parse.GetValue(Env), "--env"),
    };
}
