using System.CommandLine;
using System.Formats.Tar;
using System.IO.Pipelines;
using Cordon.Protocol.Api;

namespace Cordon.Cli;

/// <summary><c>cordon image ls|build|pull|import</c>.</summary>
internal static class ImageCommands
{
    public static Command Create()
    {
        var group = new Command("image", "Manage images.");

        var ls = new Command("ls", "List images.");
        ls.SetAction((_, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            Console.WriteLine($"{"NAME",-24}{"STATUS",-10}{"SIZE",-10}{"DIGEST",-20}");
            foreach (var image in await client.ListImagesAsync(cancellationToken))
            {
                Console.WriteLine($"{image.Name,-24}{image.Status,-10}{(image.SizeBytes >> 20) + "Mi",-10}{(image.Digest ?? "")[..Math.Min(19, image.Digest?.Length ?? 0)],-20}");
            }

            return 0;
        }));
        group.Subcommands.Add(ls);

        var contextPath = new Argument<string?>("context") { Description = "With -t: the build context directory (default: .). Without: 'default' rebuilds the default image from Debian packages.", Arity = ArgumentArity.ZeroOrOne };
        var rebuild = new Option<bool>("--rebuild") { Description = "The default image: build again even if cached." };
        var tag = new Option<string?>("--tag", "-t") { Description = "Build an image of this name from a Dockerfile." };
        var file = new Option<string?>("--file", "-f") { Description = "The Dockerfile (default: CONTEXT/Dockerfile)." };
        var buildArgs = new Option<string[]>("--build-arg") { Description = "NAME=value for an ARG (repeatable).", AllowMultipleArgumentsPerToken = false };
        var target = new Option<string?>("--target") { Description = "The stage to build (default: the last)." };
        var noCache = new Option<bool>("--no-cache") { Description = "Run every step, whatever the step cache holds." };
        var network = new Option<string?>("--network") { Description = "internet or none for the steps' traffic (default: the server's)." };
        var startCmd = new Option<string?>("--start-cmd") { Description = "A shell command every sandbox of the image starts in the background (a server)." };
        var readyCmd = new Option<string?>("--ready-cmd") { Description = "A shell command that succeeds once the start command's service is up; creates wait for it." };
        var build = new Command("build", "Build an image from a Dockerfile (-t NAME [CONTEXT]), or the default image from Debian packages.")
        {
            contextPath, rebuild, tag, file, buildArgs, target, noCache, network, startCmd, readyCmd,
        };
        build.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            if (parse.GetValue(tag) is not { } imageName)
            {
                var name = parse.GetValue(contextPath) ?? "default";
                return await FollowAsync(client, await client.BuildImageAsync(name, parse.GetValue(rebuild), cancellationToken), cancellationToken);
            }

            var args = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var pair in parse.GetValue(buildArgs) ?? [])
            {
                var equals = pair.IndexOf('=');
                if (equals > 0)
                {
                    args[pair[..equals]] = pair[(equals + 1)..];
                }
                else if (Environment.GetEnvironmentVariable(pair) is { } fromEnvironment)
                {
                    args[pair] = fromEnvironment; // as docker build: --build-arg NAME takes NAME from the environment
                }
            }

            return await BuildAsync(client, imageName, parse.GetValue(contextPath) ?? ".", parse.GetValue(file), new Client.ImageBuildOptions
            {
                Target = parse.GetValue(target),
                NoCache = parse.GetValue(noCache),
                Network = parse.GetValue(network),
                StartCmd = parse.GetValue(startCmd),
                ReadyCmd = parse.GetValue(readyCmd),
                BuildArgs = args,
            }, cancellationToken);
        }));
        group.Subcommands.Add(build);

        var reference = new Argument<string>("reference") { Description = "What to pull: registry.example.com:5000/team/app:1.2, …@sha256:…, or a Docker Hub name." };
        var pullName = new Option<string?>("--name") { Description = "Name for the image here (default: the last path component and the tag, e.g. app:1.2)." };
        var username = new Option<string?>("--username") { Description = "Registry user; the password is read from standard input (never from the command line)." };
        var passwordSecret = new Option<string?>("--password-secret") { Description = "With --username: the name of a secret of your key holding the password (cordon secret create), instead of standard input." };
        var pull = new Command("pull", "Pull an image from an OCI registry.") { reference, pullName, username, passwordSecret };
        pull.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            RegistryCredentials? credentials = null;
            if (parse.GetValue(username) is { } secretUser && parse.GetValue(passwordSecret) is { } secret)
            {
                credentials = new RegistryCredentials { Username = secretUser, PasswordSecret = secret };
            }
            else if (parse.GetValue(username) is { } user)
            {
                var password = (await Console.In.ReadLineAsync(cancellationToken))?.TrimEnd('\r', '\n');
                if (string.IsNullOrEmpty(password))
                {
                    Console.Error.WriteLine("cordon: --username needs the password on standard input.");
                    return 2;
                }

                credentials = new RegistryCredentials { Username = user, Password = password };
            }

            var image = await client.PullImageAsync(new PullImageRequest { From = parse.GetValue(reference)!, Name = parse.GetValue(pullName), Credentials = credentials }, cancellationToken);
            return await FollowAsync(client, image, cancellationToken);
        }));
        group.Subcommands.Add(pull);

        var importName = new Argument<string>("name") { Description = "Name for the image." };
        var source = new Argument<string>("source") { Description = "A root file system tarball (.tar, .tar.gz), a root file system directory, or an OCI image layout directory." };
        var import = new Command("import", "Import an image.") { importName, source };
        import.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            var path = parse.GetValue(source)!;
            Stream body;
            Task? producer = null;
            if (Directory.Exists(path))
            {
                // Stream a tarball of the directory without a temporary file.
                var pipe = new Pipe();
                producer = Task.Run(async () =>
                {
                    await using var writer = pipe.Writer.AsStream();
                    await TarFile.CreateFromDirectoryAsync(path, writer, includeBaseDirectory: false, cancellationToken);
                }, cancellationToken);
                body = pipe.Reader.AsStream();
            }
            else if (File.Exists(path))
            {
                body = File.OpenRead(path);
            }
            else
            {
                Console.Error.WriteLine($"cordon: '{path}' does not exist.");
                return 1;
            }

            await using (body)
            {
                var image = await client.ImportImageAsync(parse.GetValue(importName)!, body, cancellationToken);
                if (producer is not null)
                {
                    await producer;
                }

                Console.WriteLine($"{image.Name}: {image.Digest} ({image.Layers.Count} layer(s), {image.SizeBytes >> 20} MiB)");
            }

            return 0;
        }));
        group.Subcommands.Add(import);
        return group;
    }

    /// <summary>Sends the context, then prints the build's log as it runs; exit 0 when the image is ready, 1 when the
    /// build failed (with the failed step's last lines).</summary>
    private static async Task<int> BuildAsync(Client.CordonClient client, string name, string contextDirectory, string? dockerfile, Client.ImageBuildOptions options, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(contextDirectory))
        {
            Console.Error.WriteLine($"cordon: the build context '{contextDirectory}' is not a directory.");
            return 2;
        }

        // A Dockerfile outside the context travels with it under a name of its own, as with docker build -f.
        string? outside = null;
        var inContext = "Dockerfile";
        if (dockerfile is not null)
        {
            var full = Path.GetFullPath(dockerfile);
            var relative = Path.GetRelativePath(Path.GetFullPath(contextDirectory), full);
            if (!File.Exists(full))
            {
                Console.Error.WriteLine($"cordon: the Dockerfile '{dockerfile}' does not exist.");
                return 2;
            }

            if (relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative))
            {
                outside = full;
                inContext = ContextArchive.OutsideDockerfile;
            }
            else
            {
                inContext = relative.Replace(Path.DirectorySeparatorChar, '/');
            }
        }

        var pipe = new Pipe();
        var producer = Server.Http.PipeWriting.RunAsync(pipe.Writer, writer => ContextArchive.WriteAsync(contextDirectory, outside, writer, cancellationToken));
        ImageInfo started;
        await using (var body = pipe.Reader.AsStream())
        {
            started = await client.BuildImageFromContextAsync(name, body, options with { Dockerfile = inContext }, cancellationToken);
        }

        await producer;
        var status = "failed";
        await foreach (var e in client.FollowBuildAsync(started.Name, 0, cancellationToken))
        {
            switch (e.Type)
            {
                case "step":
                    Console.WriteLine($"#{e.Step}/{e.Steps} [{e.Stage}] {e.Instruction}{(e.Cached == true ? "  (cached)" : "")}");
                    break;
                case "output":
                    Console.WriteLine("    " + e.Message);
                    break;
                case "error":
                    Console.Error.WriteLine(e.Message);
                    foreach (var line in e.LastLines ?? [])
                    {
                        Console.Error.WriteLine("    | " + line);
                    }

                    break;
                case "done":
                    status = e.Status ?? "failed";
                    Console.WriteLine(e.Message);
                    break;
                default:
                    Console.WriteLine($"{e.Type}: {e.Message}");
                    break;
            }
        }

        return status == "ready" ? 0 : 1;
    }

    /// <summary>Prints a building image's progress until it is ready (exit 0) or failed (exit 1, with why).</summary>
    private static async Task<int> FollowAsync(Client.CordonClient client, ImageInfo image, CancellationToken cancellationToken)
    {
        string? last = null;
        while (image.Status == "building")
        {
            if (image.Message != last && image.Message is not null)
            {
                Console.WriteLine("  " + image.Message);
                last = image.Message;
            }

            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            image = await client.GetImageAsync(image.Name, cancellationToken);
        }

        Console.WriteLine(image.Status == "ready" ? $"{image.Name}: ready ({image.SizeBytes >> 20} MiB)" : $"{image.Name}: {image.Status}: {image.Message}");
        return image.Status == "ready" ? 0 : 1;
    }
}
