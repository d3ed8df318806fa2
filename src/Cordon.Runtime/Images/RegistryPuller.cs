using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Cordon.Runtime.Images;

/// <summary>Pulls an image from an OCI registry with skopeo (the containers project's own tool: the registry v2 API,
/// anonymous, basic and bearer-token auth, Docker and OCI media types, manifest lists, digests verified) into an OCI
/// archive that <see cref="LayerStore"/> imports like any other.</summary>
/// <remarks>
/// SECURITY: skopeo never sees the host's own registry credentials (its home and runtime directory are the pull's
/// scratch directory, and <c>--src-no-creds</c> applies unless the caller gave some); the caller's credentials go in an
/// auth file of mode 0600 in that directory, never in the argument list (which every host user can read).
/// </remarks>
public sealed partial class RegistryPuller(string skopeo = RegistryPuller.DefaultPath)
{
    public const string DefaultPath = "/usr/bin/skopeo";

    /// <summary>Whether skopeo is installed (<c>./cordon</c> installs it).</summary>
    public bool Available => File.Exists(skopeo);

    /// <summary>Copies the linux/amd64 image of <paramref name="reference"/> into the OCI archive
    /// <paramref name="archive"/>, reporting each blob as it starts.</summary>
    /// <param name="scratch">An empty root-only directory for the pull's own files; removed by the caller.</param>
    /// <param name="plainHttp">The registry is one of the configured insecure ones (plain HTTP or unverified TLS).</param>
    /// <exception cref="InvalidDataException">The registry refused or the image could not be read; the message says why.</exception>
    public async Task PullAsync(ImageReference reference, string archive, string scratch, (string User, string Password)? credentials,
        bool plainHttp, Action<string> progress, CancellationToken cancellationToken)
    {
        var info = await StartInfoAsync(["copy", "--retry-times", "2"], reference, scratch, credentials, plainHttp, cancellationToken);
        info.ArgumentList.Add("oci-archive:" + archive);
        await RunAsync(info, scratch, line =>
        {
            if (line.StartsWith("Copying ", StringComparison.Ordinal))
            {
                progress(line.Trim());
            }
        }, cancellationToken);
    }

    /// <summary>The linux/amd64 image's config (the registry's manifest and config only, no layer; digests verified
    /// by skopeo).</summary>
    /// <exception cref="InvalidDataException">The registry refused or the image could not be read.</exception>
    public async Task<string> InspectConfigAsync(ImageReference reference, string scratch, (string User, string Password)? credentials,
        bool plainHttp, CancellationToken cancellationToken)
    {
        var info = await StartInfoAsync(["inspect", "--config", "--raw", "--retry-times", "2"], reference, scratch, credentials, plainHttp, cancellationToken);
        var config = new StringBuilder();
        await RunAsync(info, scratch, line =>
        {
            if (config.Length < MaxConfigChars)
            {
                config.AppendLine(line);
            }
        }, cancellationToken);
        return config.Length < MaxConfigChars ? config.ToString() : throw new InvalidDataException("the image's config is larger than 4 MiB");
    }

    private const int MaxConfigChars = 4 << 20;

    private async Task<ProcessStartInfo> StartInfoAsync(string[] command, ImageReference reference, string scratch, (string User, string Password)? credentials,
        bool plainHttp, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(skopeo)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = scratch,
        };
        info.Environment["HOME"] = scratch;
        info.Environment["XDG_RUNTIME_DIR"] = scratch;
        info.Environment["TMPDIR"] = scratch; // the blobs it fetches before writing the archive, bounded with it
        info.Environment.Remove("REGISTRY_AUTH_FILE");
        info.Environment.Remove("DOCKER_CONFIG");
        foreach (var arg in command)
        {
            info.ArgumentList.Add(arg);
        }

        info.ArgumentList.Add("--override-os");
        info.ArgumentList.Add("linux");
        info.ArgumentList.Add("--override-arch");
        info.ArgumentList.Add("amd64");
        var (authFlag, noCredsFlag, tlsFlag) = command[0] == "copy"
            ? ("--src-authfile", "--src-no-creds", "--src-tls-verify=false")
            : ("--authfile", "--no-creds", "--tls-verify=false");
        if (credentials is { } given)
        {
            var authFile = Path.Combine(scratch, "auth.json");
            if (!File.Exists(authFile))
            {
                var token = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{given.User}:{given.Password}"));
                var json = JsonSerializer.Serialize(new Dictionary<string, Dictionary<string, Dictionary<string, string>>>
                {
                    ["auths"] = new() { [reference.Registry] = new() { ["auth"] = token } },
                }, RegistryJsonContext.Default.DictionaryStringDictionaryStringDictionaryStringString);
                await File.WriteAllTextAsync(authFile, "", cancellationToken);
                File.SetUnixFileMode(authFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                await File.WriteAllTextAsync(authFile, json, cancellationToken);
            }

            info.ArgumentList.Add(authFlag);
            info.ArgumentList.Add(authFile);
        }
        else
        {
            info.ArgumentList.Add(noCredsFlag);
        }

        if (plainHttp)
        {
            info.ArgumentList.Add(tlsFlag);
        }

        info.ArgumentList.Add("docker://" + reference);
        return info;
    }

    /// <summary>Runs skopeo, each line of its output to <paramref name="output"/>.</summary>
    private static async Task RunAsync(ProcessStartInfo info, string scratch, Action<string> output, CancellationToken cancellationToken)
    {
        using var process = Process.Start(info) ?? throw new InvalidOperationException("skopeo did not start.");
        process.StandardInput.Close();
        var errors = new StringBuilder();
        var stdout = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync(cancellationToken) is { } line)
            {
                output(line);
            }
        }, cancellationToken);
        var stderr = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync(cancellationToken) is { } line)
            {
                if (errors.Length < 8192)
                {
                    errors.AppendLine(line);
                }
            }
        }, cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
            await Task.WhenAll(stdout, stderr);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidDataException(Reason(errors.ToString(), scratch));
        }
    }

    /// <summary>skopeo's own words for the failure (its fatal message), without the scratch directory's path.</summary>
    internal static string Reason(string stderr, string scratch)
    {
        var message = FatalRegex().Match(stderr) is { Success: true } fatal
            ? fatal.Groups[1].Value.Replace("\\\"", "\"", StringComparison.Ordinal)
            : stderr.Trim().Split('\n').LastOrDefault()?.Trim() ?? "";
        message = message.Replace(scratch, "…", StringComparison.Ordinal);
        return message.Length > 1000 ? message[..1000] + "…" : message;
    }

    [GeneratedRegex("level=fatal msg=\"((?:[^\"\\\\]|\\\\.)*)\"")]
    private static partial Regex FatalRegex();
}
