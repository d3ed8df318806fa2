using System.CommandLine;

namespace Cordon.Cli;

/// <summary><c>cordon snapshot create|ls|rm</c>.</summary>
internal static class SnapshotCommands
{
    public static Command Create()
    {
        var group = new Command("snapshot", "Manage snapshots: saved file systems of sandboxes that new sandboxes start from (--snapshot).");

        var id = new Argument<string>("sandbox") { Description = "The sandbox to snapshot." };
        var name = new Option<string?>("--name") { Description = "The snapshot's name (made up when left out)." };
        var create = new Command("create", "Save a sandbox's file system as a snapshot (it keeps running); prints the snapshot's name.") { id, name };
        create.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            var snapshot = await client.CreateSnapshotAsync(parse.GetValue(id)!, parse.GetValue(name), cancellationToken);
            Console.WriteLine(snapshot.Name);
            return 0;
        }));
        group.Subcommands.Add(create);

        var ls = new Command("ls", "List snapshots.");
        ls.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            Console.WriteLine($"{"NAME",-32}{"ID",-27}{"SANDBOX",-22}{"IMAGE",-16}{"USED BY",-9}{"CREATED",-20}");
            foreach (var s in await client.ListSnapshotsAsync(cancellationToken))
            {
                Console.WriteLine($"{s.Name,-32}{s.Id,-27}{s.SandboxId,-22}{s.Image,-16}{s.UsedBy,-9}{s.CreatedAt.ToLocalTime():yyyy-MM-dd HH:mm:ss}");
            }

            return 0;
        }));
        group.Subcommands.Add(ls);

        var names = new Argument<string[]>("snapshots") { Description = "Snapshot names or ids.", Arity = ArgumentArity.OneOrMore };
        var rm = new Command("rm", "Delete snapshots (refused while sandboxes start from them).") { names };
        rm.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            foreach (var snapshot in parse.GetValue(names)!)
            {
                await client.DeleteSnapshotAsync(snapshot, cancellationToken);
                Console.WriteLine(snapshot);
            }

            return 0;
        }));
        group.Subcommands.Add(rm);
        return group;
    }
}
