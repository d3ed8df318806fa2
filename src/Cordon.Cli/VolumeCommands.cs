using System.CommandLine;

namespace Cordon.Cli;

/// <summary><c>cordon volume create|ls|rm|put|get</c>.</summary>
internal static class VolumeCommands
{
    public static Command Create()
    {
        var group = new Command("volume", "Manage volumes: named storage mounted into sandboxes (--volume NAME:/path) that outlives them.");

        var name = new Argument<string>("name") { Description = "The volume's name." };
        var size = new Option<long?>("--size") { Description = "Its size in MiB (default 1024)." };
        var create = new Command("create", "Create a volume.") { name, size };
        create.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            var volume = await client.CreateVolumeAsync(parse.GetValue(name)!, parse.GetValue(size), cancellationToken);
            Console.WriteLine(volume.Name);
            return 0;
        }));
        group.Subcommands.Add(create);

        var ls = new Command("ls", "List volumes.");
        ls.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            Console.WriteLine($"{"NAME",-24}{"ID",-26}{"SIZE",-10}{"USED BY",-9}{"CREATED",-20}");
            foreach (var v in await client.ListVolumesAsync(cancellationToken))
            {
                Console.WriteLine($"{v.Name,-24}{v.Id,-26}{v.SizeMiB + "Mi",-10}{v.UsedBy,-9}{v.CreatedAt.ToLocalTime():yyyy-MM-dd HH:mm:ss}");
            }

            return 0;
        }));
        group.Subcommands.Add(ls);

        var names = new Argument<string[]>("names") { Description = "Volume names.", Arity = ArgumentArity.OneOrMore };
        var rm = new Command("rm", "Delete volumes and their files (refused while a sandbox mounts one).") { names };
        rm.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            foreach (var volume in parse.GetValue(names)!)
            {
                await client.DeleteVolumeAsync(volume, cancellationToken);
                Console.WriteLine(volume);
            }

            return 0;
        }));
        group.Subcommands.Add(rm);

        var putVolume = new Argument<string>("volume") { Description = "The volume." };
        var putPath = new Argument<string>("path") { Description = "Path in the volume." };
        var put = new Command("put", "Write standard input to a file of the volume.") { putVolume, putPath };
        put.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            await using var input = Console.OpenStandardInput();
            var entry = await client.WriteVolumeFileAsync(parse.GetValue(putVolume)!, parse.GetValue(putPath)!, input, cancellationToken);
            Console.Error.WriteLine($"{entry.Path}: {entry.Size} bytes");
            return 0;
        }));
        group.Subcommands.Add(put);

        var getVolume = new Argument<string>("volume") { Description = "The volume." };
        var getPath = new Argument<string>("path") { Description = "Path in the volume." };
        var get = new Command("get", "Write a file of the volume to standard output.") { getVolume, getPath };
        get.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            await using var file = await client.ReadVolumeFileAsync(parse.GetValue(getVolume)!, parse.GetValue(getPath)!, cancellationToken);
            await using var output = Console.OpenStandardOutput();
            await file.CopyToAsync(output, cancellationToken);
            return 0;
        }));
        group.Subcommands.Add(get);
        return group;
    }
}
