using System.CommandLine;

namespace Cordon.Cli;

/// <summary><c>cordon pool ls|set</c> (admin key).</summary>
internal static class PoolCommands
{
    public static Command Create()
    {
        var group = new Command("pool", "Manage warm pools: sandboxes of an image kept started, taken by creates that ask for the defaults.");

        var ls = new Command("ls", "List the warm pools.");
        ls.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            Console.WriteLine($"{"IMAGE",-32}{"SIZE",-6}{"READY",-7}{"CLAIMS",-9}{"MISSES",-8}");
            foreach (var p in await client.ListPoolsAsync(cancellationToken))
            {
                Console.WriteLine($"{p.Image,-32}{p.Size,-6}{p.Ready,-7}{p.Claims,-9}{p.Misses,-8}");
            }

            return 0;
        }));
        group.Subcommands.Add(ls);

        var image = new Argument<string>("image") { Description = "The image whose pool to size." };
        var size = new Argument<int>("size") { Description = "Sandboxes to keep started (0 ends the pool)." };
        var set = new Command("set", "Keep this many sandboxes of an image started ahead; kept across restarts.") { image, size };
        set.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            var pool = await client.SetPoolAsync(parse.GetValue(image)!, parse.GetValue(size), cancellationToken);
            Console.WriteLine($"{pool.Image}: {pool.Size} kept, {pool.Ready} ready now");
            return 0;
        }));
        group.Subcommands.Add(set);
        return group;
    }
}
