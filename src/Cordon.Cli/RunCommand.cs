using System.CommandLine;
using Cordon.Protocol.Api;

namespace Cordon.Cli;

/// <summary><c>cordon run [options] -- CMD…</c>: a one-shot sandbox that streams the command's output and
/// returns its exit code; the sandbox is destroyed afterwards, also on Ctrl+C.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var options = new SandboxOptions();
        var cmd = new Argument<string[]>("command") { Description = "The program and its arguments (after --).", Arity = ArgumentArity.OneOrMore };
        var command = new Command("run", "Run a command in a new sandbox, stream its output, then destroy the sandbox.") { cmd };
        options.AddTo(command);
        command.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            var sandbox = await client.CreateSandboxAsync(options.ToRequest(parse), cancellationToken);
            try
            {
                return await CliOutput.StreamAsync(client, sandbox.Id, ExecRequestBody.FromArgv(parse.GetValue(cmd)!), cancellationToken);
            }
            finally
            {
                await client.DeleteSandboxAsync(sandbox.Id, CancellationToken.None);
            }
        }));
        return command;
    }
}
