using System.CommandLine;
using Cordon.Client;
using Cordon.Protocol.Api;

namespace Cordon.Cli;

/// <summary><c>cordon secret set|ls|rm</c>. A value is read from standard input, never from the command line (where
/// the process list and the shell's history would keep it).</summary>
internal static class SecretCommands
{
    public static Command Create()
    {
        var group = new Command("secret", "Manage secrets: values sandboxes use without holding them (the proxy puts them into HTTPS request headers to their hosts).");

        var name = new Argument<string>("name") { Description = "Secret name." };
        var hosts = new Option<string[]>("--host") { Description = "A host its value may be sent to (api.example.com, *.example.com; repeatable).", AllowMultipleArgumentsPerToken = false };
        var set = new Command("set", "Create or change a secret; its value is read from standard input (one line).") { name, hosts };
        set.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            var value = (await Console.In.ReadToEndAsync(cancellationToken)).TrimEnd('\r', '\n');
            var given = parse.GetValue(hosts) is { Length: > 0 } h ? h : null;
            SecretInfo secret;
            try
            {
                secret = await client.UpdateSecretAsync(parse.GetValue(name)!, new UpdateSecretRequest { Value = value, Hosts = given }, cancellationToken);
            }
            catch (CordonApiException ex) when (ex.Status == 404)
            {
                secret = await client.CreateSecretAsync(new CreateSecretRequest { Name = parse.GetValue(name)!, Value = value, Hosts = given }, cancellationToken);
            }

            Console.WriteLine($"{secret.Name} version {secret.Version}; hosts: {(secret.Hosts.Count == 0 ? "(none: header rules only)" : string.Join(", ", secret.Hosts))}");
            return 0;
        }));
        group.Subcommands.Add(set);

        var ls = new Command("ls", "List secrets (never their values).");
        ls.SetAction((_, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            Console.WriteLine($"{"NAME",-32}{"VERSION",-9}{"UPDATED",-22}HOSTS");
            foreach (var secret in await client.ListSecretsAsync(cancellationToken))
            {
                Console.WriteLine($"{secret.Name,-32}{secret.Version,-9}{secret.UpdatedAt.UtcDateTime,-22:yyyy-MM-dd HH:mm:ss}{string.Join(",", secret.Hosts)}");
            }

            return 0;
        }));
        group.Subcommands.Add(ls);

        var names = new Argument<string[]>("names") { Description = "Secret names.", Arity = ArgumentArity.OneOrMore };
        var rm = new Command("rm", "Delete secrets.") { names };
        rm.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            foreach (var secret in parse.GetValue(names)!)
            {
                await client.DeleteSecretAsync(secret, cancellationToken);
            }

            return 0;
        }));
        group.Subcommands.Add(rm);
        return group;
    }
}
