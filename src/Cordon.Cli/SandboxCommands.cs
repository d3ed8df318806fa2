using System.CommandLine;
using Cordon.Protocol.Api;

namespace Cordon.Cli;

/// <summary><c>cordon sandbox create|ls|exec|network|pause|resume|stop|start|snapshot|fork|rm</c>.</summary>
internal static class SandboxCommands
{
    public static Command Create()
    {
        var group = new Command("sandbox", "Manage sandboxes.");

        var options = new SandboxOptions();
        var create = new Command("create", "Create a sandbox and print its id.");
        options.AddTo(create);
        create.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            var sandbox = await client.CreateSandboxAsync(options.ToRequest(parse), cancellationToken);
            Console.WriteLine(sandbox.Id);
            return 0;
        }));
        group.Subcommands.Add(create);

        var all = new Option<bool>("--all", "-a") { Description = "Include ended sandboxes." };
        var ls = new Command("ls", "List sandboxes.") { all };
        ls.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            var sandboxes = await client.ListSandboxesAsync(parse.GetValue(all), cancellationToken);
            Console.WriteLine($"{"ID",-22}{"STATE",-10}{"IMAGE",-16}{"CPU",-6}{"MEMORY",-9}{"EXPIRES",-22}");
            foreach (var s in sandboxes)
            {
                var expires = s.ExpiresAt?.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss") ?? (s.EndReason ?? "-");
                Console.WriteLine($"{s.Id,-22}{s.State,-10}{s.Image,-16}{s.Cpu,-6}{s.MemoryMiB + "Mi",-9}{expires,-22}");
            }

            return 0;
        }));
        group.Subcommands.Add(ls);

        var id = new Argument<string>("id") { Description = "Sandbox id." };
        var cmd = new Argument<string[]>("command") { Description = "The program and its arguments (after --).", Arity = ArgumentArity.OneOrMore };
        var cwd = new Option<string?>("--cwd") { Description = "Working directory." };
        var user = new Option<string?>("--user", "-u") { Description = "User to run as." };
        var exec = new Command("exec", "Run a command in a sandbox and stream its output.") { id, cmd, cwd, user };
        exec.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(client =>
            CliOutput.StreamAsync(client, parse.GetValue(id)!, ExecRequestBody.FromArgv(parse.GetValue(cmd)!) with
            {
                Cwd = parse.GetValue(cwd),
                User = parse.GetValue(user),
            }, cancellationToken)));
        group.Subcommands.Add(exec);

        var networkId = new Argument<string>("id") { Description = "Sandbox id." };
        var networkOptions = new SandboxOptions();
        var network = new Command("network", "Show a sandbox's network policy, or replace it with --network/--allow/--deny (open connections it forbids are closed).")
        {
            networkId, networkOptions.Network, networkOptions.Allow, networkOptions.Deny,
        };
        network.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            var policy = networkOptions.ToPolicy(parse) is { } wanted
                ? await client.SetNetworkAsync(parse.GetValue(networkId)!, wanted, cancellationToken)
                : await client.GetNetworkAsync(parse.GetValue(networkId)!, cancellationToken);
            Console.WriteLine($"internet: {(policy.Internet == true ? "yes" : "no")}");
            Console.WriteLine($"allow:    {string.Join(' ', policy.AllowOut ?? [])}");
            Console.WriteLine($"deny:     {string.Join(' ', policy.DenyOut ?? [])}");
            return 0;
        }));
        group.Subcommands.Add(network);

        foreach (var (verb, what, call) in new (string, string, Func<Cordon.Client.CordonClient, string, CancellationToken, Task<SandboxInfo>>)[]
        {
            ("pause", "Freeze every process of sandboxes in memory.", (c, s, t) => c.PauseAsync(s, t)),
            ("resume", "Resume paused sandboxes (or start stopped ones).", (c, s, t) => c.ResumeAsync(s, t)),
            ("stop", "Stop sandboxes: their processes end, their files are kept.", (c, s, t) => c.StopAsync(s, t)),
            ("start", "Start stopped sandboxes again in the files they kept.", (c, s, t) => c.StartAsync(s, t)),
        })
        {
            var targets = new Argument<string[]>("ids") { Description = "Sandbox ids.", Arity = ArgumentArity.OneOrMore };
            var command = new Command(verb, what) { targets };
            command.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
            {
                foreach (var target in parse.GetValue(targets)!)
                {
                    var sandbox = await call(client, target, cancellationToken);
                    Console.WriteLine($"{sandbox.Id} {sandbox.State}");
                }

                return 0;
            }));
            group.Subcommands.Add(command);
        }

        var forkId = new Argument<string>("id") { Description = "Sandbox id." };
        var count = new Option<int>("--count", "-n") { Description = "How many sandboxes (1-20).", DefaultValueFactory = _ => 1 };
        var fork = new Command("fork", "Make new sandboxes from a sandbox's files as they are now; prints their ids.") { forkId, count };
        fork.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            var failed = 0;
            foreach (var result in await client.ForkAsync(parse.GetValue(forkId)!, parse.GetValue(count), cancellationToken: cancellationToken))
            {
                if (result.Sandbox is { } sandbox)
                {
                    Console.WriteLine(sandbox.Id);
                }
                else
                {
                    Console.Error.WriteLine($"cordon: a fork failed: {result.Error}");
                    failed++;
                }
            }

            return failed == 0 ? 0 : 1;
        }));
        group.Subcommands.Add(fork);

        var ids = new Argument<string[]>("ids") { Description = "Sandbox ids.", Arity = ArgumentArity.OneOrMore };
        var rm = new Command("rm", "Destroy sandboxes.") { ids };
        rm.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            foreach (var sandbox in parse.GetValue(ids)!)
            {
                await client.DeleteSandboxAsync(sandbox, cancellationToken);
                Console.WriteLine(sandbox);
            }

            return 0;
        }));
        group.Subcommands.Add(rm);
        return group;
    }
}
