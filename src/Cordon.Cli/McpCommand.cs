using System.CommandLine;
using System.Diagnostics;
using Cordon.Client;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Cordon.Cli;

/// <summary><c>cordon mcp</c>: MCP on stdin/stdout for clients that launch a command (Goose's stdio extensions,
/// Claude Desktop). It relays every message to the server's <c>/mcp</c> endpoint, so both transports are
/// served by one implementation, and starts a local server first when none answers.</summary>
internal static class McpCommand
{
    public static Command Create()
    {
        var command = new Command("mcp", "Speak MCP on stdin/stdout, relayed to the Cordon server (CORDON_URL/CORDON_API_KEY or the saved config); starts a local server if none runs.");
        command.SetAction((_, cancellationToken) => RunAsync(cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var (url, key) = CordonClient.ResolveSettings();
        if (!await AnswersAsync(url, cancellationToken))
        {
            if (!url.IsLoopback)
            {
                await Console.Error.WriteLineAsync($"cordon mcp: no Cordon server answers at {url}; start it there, or point CORDON_URL at a running one.");
                return 1;
            }

            if (!await StartLocalServerAsync(url, cancellationToken))
            {
                return 1;
            }

            // A server started for the first time generates the key and saves it where ResolveSettings reads it.
            (url, key) = CordonClient.ResolveSettings();
        }

        var upstream = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(url, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + key },
            Name = "cordon",
        });
        await using var server = await upstream.ConnectAsync(cancellationToken);
        await using var client = new StdioServerTransport("cordon");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        // Each direction ends when its side closes; either ending ends the relay.
        var up = RelayUpAsync(client, server, stop.Token);
        var down = RelayAsync(server, client, stop.Token);
        await Task.WhenAny(up, down);
        await stop.CancelAsync();
        return 0;
    }

    /// <summary>Client to server. Over HTTP a request's send lasts until its answer arrives, so requests go out
    /// side by side (a cancellation must overtake the call it cancels); only <c>initialize</c>, which opens
    /// the session every later message names, is awaited before the next message is sent.</summary>
    private static async Task RelayUpAsync(ITransport from, ITransport to, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var message in from.MessageReader.ReadAllAsync(cancellationToken))
            {
                if (message is JsonRpcRequest { Method: RequestMethods.Initialize })
                {
                    await to.SendMessageAsync(message, cancellationToken);
                }
                else
                {
                    _ = SendAsync(to, message, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task SendAsync(ITransport to, JsonRpcMessage message, CancellationToken cancellationToken)
    {
        try
        {
            await to.SendMessageAsync(message, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The relay is shutting down.
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException or InvalidOperationException)
        {
            await Console.Error.WriteLineAsync("cordon mcp: a message could not be relayed to the server: " + ex.Message);
        }
    }

    private static async Task RelayAsync(ITransport from, ITransport to, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var message in from.MessageReader.ReadAllAsync(cancellationToken))
            {
                await to.SendMessageAsync(message, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task<bool> AnswersAsync(Uri url, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await http.GetAsync(new Uri(url, "/health"), cancellationToken);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Starts <c>cordon serve</c> in its own session (it outlives this process), logging next to the
    /// saved config, and waits until it answers.</summary>
    private static async Task<bool> StartLocalServerAsync(Uri url, CancellationToken cancellationToken)
    {
        var home = Environment.GetEnvironmentVariable("HOME") ?? "/root";
        var log = Path.Combine(home, ".cache", "cordon", "server.log");
        Directory.CreateDirectory(Path.GetDirectoryName(log)!);
        var self = Environment.ProcessPath ?? "cordon";
        var start = new ProcessStartInfo("/usr/bin/setsid")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in (string[])["-f", "/bin/sh", "-c", "exec \"$0\" serve --listen \"$1\" >>\"$2\" 2>&1 </dev/null", self, $"{url.Host}:{url.Port}", log])
        {
            start.ArgumentList.Add(arg);
        }

        using (var launcher = Process.Start(start))
        {
            if (launcher is null)
            {
                await Console.Error.WriteLineAsync("cordon mcp: could not start a local Cordon server.");
                return false;
            }

            await launcher.WaitForExitAsync(cancellationToken);
        }

        await Console.Error.WriteLineAsync($"cordon mcp: started a local Cordon server at {url} (log: {log})");
        for (var i = 0; i < 600; i++)
        {
            if (await AnswersAsync(url, cancellationToken))
            {
                return true;
            }

            await Task.Delay(200, cancellationToken);
        }

        await Console.Error.WriteLineAsync($"cordon mcp: the local server did not answer within two minutes; see {log}.");
        return false;
    }
}
