using Cordon.Client;
using Cordon.Protocol.Api;

namespace Cordon.Cli;

/// <summary>Shared helpers of the client commands: connecting, streaming a command, reporting errors.</summary>
internal static class CliOutput
{
    /// <summary>Runs a client action, turning API and connection errors into one readable line and exit code 1.</summary>
    public static async Task<int> WithClientAsync(Func<CordonClient, Task<int>> action)
    {
        using var client = CordonClient.FromEnvironment();
        try
        {
            return await action(client);
        }
        catch (CordonApiException ex)
        {
            Console.Error.WriteLine($"cordon: {ex.Message} ({ex.Code})");
            return 1;
        }
        catch (HttpRequestException ex)
        {
            Console.Error.WriteLine($"cordon: cannot reach the server at {client.BaseUrl} ({ex.Message}). Start it with './cordon serve', or set CORDON_URL.");
            return 1;
        }
    }

    /// <summary>Streams a command's output to this terminal and returns its exit code.</summary>
    public static async Task<int> StreamAsync(CordonClient client, string id, ExecRequestBody body, CancellationToken cancellationToken)
    {
        var exitCode = 1;
        await using var stdout = Console.OpenStandardOutput();
        await using var stderr = Console.OpenStandardError();
        await foreach (var e in client.ExecStreamAsync(id, body, cancellationToken))
        {
            switch (e.Type)
            {
                case "stdout":
                    await stdout.WriteAsync(System.Text.Encoding.UTF8.GetBytes(e.Data ?? ""), cancellationToken);
                    await stdout.FlushAsync(cancellationToken);
                    break;
                case "stderr":
                    await stderr.WriteAsync(System.Text.Encoding.UTF8.GetBytes(e.Data ?? ""), cancellationToken);
                    break;
                case "exit":
                    exitCode = e.ExitCode ?? 1;
                    if (e.TimedOut == true)
                    {
                        Console.Error.WriteLine("cordon: the command timed out and was killed.");
                    }

                    break;
                case "error":
                    Console.Error.WriteLine("cordon: " + e.Message);
                    break;
            }
        }

        return exitCode;
    }

    public static Dictionary<string, string>? ParsePairs(string[]? pairs, string what)
    {
        if (pairs is null || pairs.Length == 0)
        {
            return null;
        }

        var result = new Dictionary<string, string>();
        foreach (var pair in pairs)
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new ArgumentException($"{what} '{pair}' is not KEY=VALUE.");
            }

            result[pair[..eq]] = pair[(eq + 1)..];
        }

        return result;
    }
}
