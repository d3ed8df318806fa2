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

        var name = new Argument<string>("name") { Description = "Image name.", DefaultValueFactory = _ => "default" };
        var rebuild = new Option<bool>("--rebuild") { Description = "Build again even if cached." };
        var build = new Command("build", "Build the default image from Debian packages (cached after the first build).") { name, rebuild };
        build.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
            await FollowAsync(client, await client.BuildImageAsync(parse.GetValue(name)!, parse.GetValue(rebuild), cancellationToken), cancellationToken)));
        group.Subcommands.Add(build);

        var reference = new Argument<string>("reference") { Description = "What to pull: registry.example.com:5000/team/app:1.2, …@sha256:…, or a Docker Hub name." };
        var pullName = new Option<string?>("--name") { Description = "Name for the image here (default: the last path component and the tag, e.g. app:1.2)." };
        var username = new Option<string?>("--username") { Description = "Registry user; the password is read from standard input (never from the command line)." };
        var pull = new Command("pull", "Pull an image from an OCI registry.") { reference, pullName, username };
        pull.SetAction((parse, cancellationToken) => CliOutput.WithClientAsync(async client =>
        {
            RegistryCredentials? credentials = null;
            if (parse.GetValue(username) is { } user)
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
