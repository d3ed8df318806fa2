using System.CommandLine;
using Cordon.Server;

namespace Cordon.Cli;

/// <summary><c>cordon serve</c>: runs the server in the foreground.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen") { Description = "host:port to listen on.", DefaultValueFactory = _ => "127.0.0.1:7411" };
        var dataDir = new Option<string>("--data-dir") { Description = "Where state, images and sandboxes live.", DefaultValueFactory = _ => "/var/lib/cordon" };
        var runtime = new Option<string?>("--runtime") { Description = "OCI runtime: crun (default) or runc." };
        var command = new Command("serve", "Run the Cordon server (REST API; the default image is prepared in the background).") { listen, dataDir, runtime };
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                return await CordonServer.RunAsync(new ServerSettings
                {
                    Listen = parse.GetValue(listen)!,
                    DataDir = parse.GetValue(dataDir),
                    Runtime = parse.GetValue(runtime),
                }, cancellationToken);
            }
            catch (Microsoft.Extensions.Options.OptionsValidationException ex)
            {
                Console.Error.WriteLine("cordon: invalid configuration: " + string.Join("; ", ex.Failures));
                return 2;
            }
            catch (IOException ex) when (ex.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                Console.Error.WriteLine($"cordon: {parse.GetValue(listen)} is already in use: is another cordon server running? Choose another with --listen.");
                return 2;
            }
        });
        return command;
    }
}
