using System.CommandLine;
using Cordon.Cli;

var root = new RootCommand("Cordon: self-hosted sandboxes for AI agents.");
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(RunCommand.Create());
root.Subcommands.Add(SandboxCommands.Create());
root.Subcommands.Add(ImageCommands.Create());
root.Subcommands.Add(SecretCommands.Create());
root.Subcommands.Add(SnapshotCommands.Create());
root.Subcommands.Add(PoolCommands.Create());
root.Subcommands.Add(VolumeCommands.Create());
root.Subcommands.Add(McpCommand.Create());
var version = new Command("version", "Print the version.");
version.SetAction(_ => Console.WriteLine(Cordon.Server.CordonServer.Version));
root.Subcommands.Add(version);
return await root.Parse(args).InvokeAsync();
