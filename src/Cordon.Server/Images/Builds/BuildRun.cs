using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Cordon.Server.State;

namespace Cordon.Server.Images.Builds;

/// <summary>One Dockerfile build: each stage's steps run in a sandbox of its own, each step that changes files is
/// committed as a snapshot and remembered in the step cache under a key of its parent state and its content.</summary>
internal sealed class BuildRun(
    ImageService images, SandboxService sandboxes, StateStore store, CordonOptions options, CallerIdentity caller,
    BuildRequest request, Dockerfile dockerfile, IReadOnlyList<BuildStage> stages, BuildContext context, BuildLog log,
    CancellationToken cancellationToken) : IAsyncDisposable
{
    /// <summary>Output lines a failed RUN reports.</summary>
    private const int TailLines = 20;

    /// <summary>Longest output line the log keeps (the rest of a longer one is cut).</summary>
    private const int MaxLineChars = 4096;

    private readonly List<string> _sandboxes = [];
    private readonly Dictionary<int, StageState> _done = [];
    private readonly long _deadline = Environment.TickCount64 + options.MaxBuildSeconds * 1000L;
    private readonly int _steps = stages.Sum(s => s.Instructions.Count + 1);
    private int _step;
    private int _cached;

    public int Steps => _steps;

    public int Cached => _cached;

    public async Task<ImageInfo> ExecuteAsync()
    {
        var globals = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var arg in dockerfile.GlobalArgs)
        {
            DeclareArg(arg, globals, globals.GetValueOrDefault);
        }

        StageState? last = null;
        foreach (var stage in stages)
        {
            last = await RunStageAsync(stage, globals);
            _done[stage.Index] = last;
        }

        var final = last!;
        var env = final.Env;
        var user = UserPart(final.User);
        var digest = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', final.BaseImage.Layers.Concat(final.Chain))
            + "\n" + JsonSerializer.Serialize(env.OrderBy(e => e.Key, StringComparer.Ordinal).ToList()) + "\n" + user + "\n" + final.WorkDir)));
        return new ImageInfo
        {
            Name = request.Name,
            Status = ImageStates.Ready,
            Digest = "sha256:" + digest,
            Layers = final.BaseImage.Layers,
            Snapshots = final.Chain,
            SizeBytes = final.BaseImage.SizeBytes,
            CreatedAt = DateTimeOffset.UtcNow,
            Env = env,
            User = user,
            WorkingDir = final.WorkDir,
            Entrypoint = final.Entrypoint,
            Cmd = final.Cmd,
            StartCmd = request.StartCmd,
            ReadyCmd = request.ReadyCmd,
        };
    }

    private async Task<StageState> RunStageAsync(BuildStage stage, Dictionary<string, string?> globals)
    {
        var label = stage.Name ?? stage.Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var from = ShellWords.Word(stage.Base, globals.GetValueOrDefault, dockerfile.Escape);
        _step++;
        Step(label, stage.From, cached: null);
        var state = From(stage, label, from);
        foreach (var instruction in stage.Instructions)
        {
            cancellationToken.ThrowIfCancellationRequested();
            _step++;
            try
            {
                await RunStepAsync(stage, state, instruction, globals);
            }
            catch (DockerfileException ex)
            {
                throw new BuildFailedException($"step {_step}/{_steps} (line {instruction.Line}) {instruction.Keyword}: {ex.Message}");
            }
        }

        return state;
    }

    /// <summary>The state a stage starts in: an earlier stage's end, or an image of this server.</summary>
    private StageState From(BuildStage stage, string label, string from)
    {
        var earlier = stages.FirstOrDefault(s => s.Index < stage.Index && (s.Name == from.ToLowerInvariant() || s.Index.ToString(System.Globalization.CultureInfo.InvariantCulture) == from));
        if (earlier is not null)
        {
            var parent = _done[earlier.Index];
            return parent.Derive(label, Key(parent.Key, "FROM-STAGE"));
        }

        if (from == "scratch")
        {
            throw new BuildFailedException("FROM scratch is not supported: start from a small image (busybox, say), or COPY --from a stage into one.");
        }

        var image = images.Find(caller, from);
        if (image is not { Status: ImageStates.Ready })
        {
            throw new BuildFailedException(image is null
                ? $"FROM {from}: this server has no image of that name. Pull it first (cordon image pull REFERENCE --name {from}, or POST /v1/images {{\"from\": …}}), or name one of GET /v1/images."
                : $"FROM {from}: the image is {image.Status} ({image.Message}).");
        }

        return new StageState
        {
            Label = label,
            BaseName = image.Name,
            BaseImage = image,
            Key = Key("FROM", Owner, image.Digest ?? image.Name),
            Chain = image.Snapshots,
            Env = new Dictionary<string, string>(image.Env, StringComparer.Ordinal),
            User = image.User,
            WorkDir = image.WorkingDir,
            Cmd = image.Cmd,
            Entrypoint = image.Entrypoint,
        };
    }

    private async Task RunStepAsync(BuildStage stage, StageState state, Instruction instruction, Dictionary<string, string?> globals)
    {
        var escape = dockerfile.Escape;
        switch (instruction.Keyword)
        {
            case "ARG":
                Step(state.Label, instruction, cached: null);
                DeclareArg(instruction, state.Args, name => state.Args.TryGetValue(name, out var v) ? v : globals.GetValueOrDefault(name));
                state.Key = Key(state.Key, "ARG", JsonSerializer.Serialize(state.Args.OrderBy(a => a.Key, StringComparer.Ordinal).ToList()));
                return;
            case "ENV":
                Step(state.Label, instruction, cached: null);
                foreach (var (name, value) in KeyValues(instruction, state.Lookup))
                {
                    state.Env[name] = value;
                }

                state.Key = Key(state.Key, "ENV", JsonSerializer.Serialize(state.Env.OrderBy(e => e.Key, StringComparer.Ordinal).ToList()));
                return;
            case "USER":
                Step(state.Label, instruction, cached: null);
                state.User = ShellWords.Word(instruction.Arguments.Trim(), state.Lookup, escape);
                state.Key = Key(state.Key, "USER", state.User);
                return;
            case "SHELL":
                Step(state.Label, instruction, cached: null);
                state.Shell = instruction.Exec!;
                state.Key = Key(state.Key, "SHELL", JsonSerializer.Serialize(state.Shell));
                return;
            case "CMD":
                Step(state.Label, instruction, cached: null);
                state.Cmd = instruction.Exec ?? [.. state.Shell, instruction.Arguments];
                return;
            case "ENTRYPOINT":
                Step(state.Label, instruction, cached: null);
                state.Entrypoint = instruction.Exec ?? [.. state.Shell, instruction.Arguments];
                return;
            case "WORKDIR":
                await WorkDirAsync(state, instruction);
                return;
            case "RUN":
                await RunAsync(state, instruction);
                return;
            case "COPY" or "ADD":
                await CopyAsync(stage, state, instruction);
                return;
            default:
                // EXPOSE, LABEL, VOLUME, STOPSIGNAL, HEALTHCHECK, MAINTAINER: recorded by Docker, no effect on a sandbox.
                Step(state.Label, instruction, cached: null);
                log.Append(new BuildEvent { Type = "info", Step = _step, Message = $"{instruction.Keyword} has no effect on Cordon sandboxes; skipped." });
                return;
        }
    }

    private async Task WorkDirAsync(StageState state, Instruction instruction)
    {
        var path = ShellWords.Word(instruction.Arguments.Trim(), state.Lookup, dockerfile.Escape);
        state.WorkDir = Absolute(state.WorkDir, path);
        var key = Key(state.Key, "WORKDIR", state.WorkDir);
        if (TryCached(state, instruction, key))
        {
            return;
        }

        Step(state.Label, instruction, cached: false);
        var id = await SandboxAsync(state);
        await sandboxes.MakeDirAsync(caller, id, state.WorkDir, "root", cancellationToken);
        await CommitAsync(state, key);
    }

    private async Task RunAsync(StageState state, Instruction instruction)
    {
        IReadOnlyList<string> argv = instruction.Exec ?? [.. state.Shell, instruction.Arguments];
        if (argv.Count == 0)
        {
            throw new DockerfileException("RUN needs a command");
        }

        // Build args reach RUN as environment variables (ENV wins over an ARG of the same name), as in Docker.
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in state.Args.Where(a => a.Value is not null))
        {
            env[name] = value!;
        }

        foreach (var (name, value) in state.Env)
        {
            env[name] = value;
        }

        var key = Key(state.Key, "RUN", JsonSerializer.Serialize(argv), JsonSerializer.Serialize(env.OrderBy(e => e.Key, StringComparer.Ordinal).ToList()), state.User, state.WorkDir);
        if (TryCached(state, instruction, key))
        {
            return;
        }

        Step(state.Label, instruction, cached: false);
        var id = await SandboxAsync(state);
        var spec = new CommandSpec
        {
            Argv = argv,
            Env = env,
            User = UserPart(state.User),
            Cwd = state.WorkDir,
            TimeoutSeconds = (int)Math.Max(1, (_deadline - Environment.TickCount64) / 1000),
        };
        var tail = new Queue<string>();
        ExitMessage? exit = null;
        await using (var command = await sandboxes.StartCommandAsync(caller, id, spec, cancellationToken))
        {
            var lines = new Dictionary<CommandStream, StringBuilder> { [CommandStream.Stdout] = new(), [CommandStream.Stderr] = new() };
            await foreach (var e in command.ReadEventsAsync(cancellationToken))
            {
                if (e.Exit is not null)
                {
                    exit = e.Exit;
                    continue;
                }

                var pending = lines[e.Stream];
                pending.Append(e.Text);
                Flush(pending, e.Stream, tail, final: false);
            }

            foreach (var (stream, pending) in lines)
            {
                Flush(pending, stream, tail, final: true);
            }
        }

        if (exit is null || exit.ExitCode != 0 || exit.Signal is not null || exit.TimedOut)
        {
            var how = exit switch
            {
                null => "ended without an exit status",
                { TimedOut: true } => $"was stopped at the build's time limit ({options.MaxBuildSeconds} s)",
                { Signal: { } signal } => $"was killed by signal {signal}",
                _ => $"failed with exit code {exit.ExitCode}",
            };
            throw new BuildFailedException($"step {_step}/{_steps} (line {instruction.Line}) `{Shorten(instruction.Text)}` {how}.")
            {
                ExitCode = exit?.ExitCode,
                LastLines = [.. tail],
            };
        }

        await CommitAsync(state, key);
    }

    /// <summary>Logs the complete lines of <paramref name="pending"/> (all of it when <paramref name="final"/>).</summary>
    private void Flush(StringBuilder pending, CommandStream stream, Queue<string> tail, bool final)
    {
        var text = pending.ToString();
        var start = 0;
        int newline;
        while ((newline = text.IndexOf('\n', start)) >= 0 || text.Length - start > MaxLineChars || (final && start < text.Length))
        {
            var end = newline >= 0 ? newline : Math.Min(text.Length, start + MaxLineChars);
            var line = text[start..end].TrimEnd('\r');
            start = newline >= 0 ? newline + 1 : end;
            if (line.Length > MaxLineChars)
            {
                line = line[..MaxLineChars] + "…";
            }

            log.Append(new BuildEvent { Type = "output", Step = _step, Stream = stream == CommandStream.Stdout ? "stdout" : "stderr", Message = line });
            tail.Enqueue(line);
            if (tail.Count > TailLines)
            {
                tail.Dequeue();
            }
        }

        pending.Clear().Append(text, start, text.Length - start);
    }

    private async Task CopyAsync(BuildStage stage, StageState state, Instruction instruction)
    {
        var words = instruction.Exec ?? ShellWords.Words(instruction.Arguments, state.Lookup, dockerfile.Escape);
        if (words.Count < 2)
        {
            throw new DockerfileException($"{instruction.Keyword} needs at least one source and a destination");
        }

        var sources = words.Take(words.Count - 1).ToList();
        var destination = Absolute(state.WorkDir, words[^1]);
        var intoDirectory = words[^1].EndsWith('/') || sources.Count > 1 || sources.Any(GlobPattern.HasWildcards);
        var owner = instruction.Flags.TryGetValue("chown", out var chown) ? ShellWords.Word(chown, state.Lookup, dockerfile.Escape) : null;
        int? mode = null;
        if (instruction.Flags.TryGetValue("chmod", out var chmod))
        {
            try
            {
                mode = Convert.ToInt32(chmod, 8);
            }
            catch (FormatException)
            {
                throw new DockerfileException($"--chmod={chmod} is not an octal mode such as 755");
            }

            if (mode is < 0 or > 0xFFF)
            {
                throw new DockerfileException($"--chmod={chmod} is not a mode between 0 and 7777");
            }
        }

        if (instruction.Keyword == "ADD" && sources.FirstOrDefault(s => s.Contains("://", StringComparison.Ordinal)) is { } url)
        {
            throw new DockerfileException($"ADD of a URL ({Shorten(url)}) is not supported: fetch it in a RUN step (curl -fsSLo {words[^1]} {Shorten(url)}), which the build's network policy governs");
        }

        if (instruction.Flags.TryGetValue("from", out var fromFlag))
        {
            await CopyFromAsync(stage, state, instruction, ShellWords.Word(fromFlag, state.Lookup, dockerfile.Escape), sources, destination, intoDirectory, owner, mode);
            return;
        }

        // What each source names in the context, and where it goes.
        var plan = new List<(ContextEntry Entry, string Target)>();
        var single = (ContextEntry?)null;
        foreach (var source in sources)
        {
            var matches = context.Match(source, out var directory);
            if (matches.Count == 0 && !directory)
            {
                throw new BuildFailedException($"step {_step}/{_steps} (line {instruction.Line}) {instruction.Keyword}: '{Shorten(source)}' is not in the build context (sources are relative to its root; .dockerignore may have left it out).");
            }

            if (directory)
            {
                var root = GlobPattern.Clean(source)!;
                plan.AddRange(matches.Select(m => (m, Join(destination, root.Length == 0 ? m.Path : m.Path[(root.Length + 1)..]))));
                intoDirectory = true;
            }
            else if (GlobPattern.HasWildcards(source))
            {
                foreach (var match in matches)
                {
                    if (match.IsDirectory)
                    {
                        plan.AddRange(context.Match(match.Path, out _).Select(m => (m, Join(destination, m.Path[(match.Path.Length + 1)..]))));
                    }
                    else
                    {
                        plan.Add((match, Join(destination, Path.GetFileName(match.Path))));
                    }
                }
            }
            else
            {
                single = matches[0];
                plan.Add((single, Join(destination, Path.GetFileName(single.Path))));
            }
        }

        if (instruction.Keyword == "ADD" && plan.FirstOrDefault(p => p.Entry.IsFile && IsArchiveName(p.Entry.Path)) is { Entry: { } archive })
        {
            throw new DockerfileException($"ADD of a local archive ({Shorten(archive.Path)}) is not unpacked by Cordon's builder: COPY it and unpack it in a RUN step (tar -xf)");
        }

        var digest = await context.DigestAsync([.. plan.Select(p => p.Entry)], cancellationToken);
        var key = Key(state.Key, instruction.Keyword, JsonSerializer.Serialize(sources), words[^1], state.WorkDir, owner ?? "", chmod ?? "", digest);
        if (TryCached(state, instruction, key))
        {
            return;
        }

        Step(state.Label, instruction, cached: false);
        var id = await SandboxAsync(state);

        // One file to a destination that is a directory goes into it, as in Docker.
        if (sources.Count == 1 && single is not null && !intoDirectory && !await IsDirectoryAsync(id, destination))
        {
            plan[0] = (single, destination);
        }

        var written = new List<string>();
        if (intoDirectory)
        {
            await sandboxes.MakeDirAsync(caller, id, destination, "root", cancellationToken);
            written.Add(destination);
        }

        foreach (var (entry, target) in plan.Where(p => p.Entry.IsDirectory))
        {
            await sandboxes.MakeDirAsync(caller, id, target, "root", cancellationToken);
            written.Add(target);
        }

        var targets = plan.Where(p => p.Entry.IsFile).ToDictionary(p => p.Entry.Path, p => p.Target, StringComparer.Ordinal);
        await context.ForEachAsync([.. plan.Where(p => p.Entry.IsFile).Select(p => p.Entry)], async (entry, data) =>
        {
            await sandboxes.WriteFileAsync(caller, id, targets[entry.Path], data, mode ?? entry.Mode, "root", cancellationToken);
            written.Add(targets[entry.Path]);
        }, cancellationToken);

        foreach (var (entry, target) in plan.Where(p => p.Entry.Type == System.Formats.Tar.TarEntryType.SymbolicLink))
        {
            await LinkAsync(id, entry.LinkTarget!, target, instruction);
            written.Add(target);
        }

        foreach (var (entry, _) in plan.Where(p => !p.Entry.IsFile && !p.Entry.IsDirectory && p.Entry.Type != System.Formats.Tar.TarEntryType.SymbolicLink))
        {
            log.Append(new BuildEvent { Type = "warning", Step = _step, Message = $"'{Shorten(entry.Path)}' is a {entry.Type} entry, which COPY does not take; skipped." });
        }

        await ChownAsync(id, owner, written, instruction);
        await CommitAsync(state, key);
    }

    /// <summary>COPY --from: files of an earlier stage (or an image), read from a sandbox of it.</summary>
    private async Task CopyFromAsync(BuildStage stage, StageState state, Instruction instruction, string from, List<string> sources, string destination, bool intoDirectory, string? owner, int? mode)
    {
        if (sources.FirstOrDefault(GlobPattern.HasWildcards) is { } pattern)
        {
            throw new DockerfileException($"COPY --from with a pattern ({Shorten(pattern)}) is not supported: name the files, or the directory that holds them");
        }

        var earlier = stages.FirstOrDefault(s => s.Index < stage.Index && (s.Name == from.ToLowerInvariant() || s.Index.ToString(System.Globalization.CultureInfo.InvariantCulture) == from));
        StageState source;
        if (earlier is not null)
        {
            source = _done[earlier.Index];
        }
        else
        {
            var image = images.Find(caller, from);
            if (image is not { Status: ImageStates.Ready })
            {
                throw new DockerfileException($"--from={from} names no earlier stage and no image of this server");
            }

            source = new StageState { Label = from, BaseName = image.Name, BaseImage = image, Key = Key("FROM", Owner, image.Digest ?? image.Name), Chain = image.Snapshots, Env = [], User = "root", WorkDir = "/" };
        }

        var paths = sources.Select(s => Absolute("/", s)).ToList();
        var key = Key(state.Key, "COPY-FROM", source.Key, JsonSerializer.Serialize(paths), destination, intoDirectory.ToString(), owner ?? "", mode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "");
        if (TryCached(state, instruction, key))
        {
            return;
        }

        Step(state.Label, instruction, cached: false);
        var id = await SandboxAsync(state);
        var sourceId = await SandboxAsync(source);
        var written = new List<string>();
        foreach (var path in paths)
        {
            FileEntry top;
            try
            {
                top = await sandboxes.StatFileAsync(caller, sourceId, path, "root", cancellationToken);
            }
            catch (CordonException ex) when (ex.Code == ErrorCode.FileNotFound)
            {
                throw new BuildFailedException($"step {_step}/{_steps} (line {instruction.Line}) COPY --from={from}: '{Shorten(path)}' does not exist there.");
            }

            if (top.Type == "dir")
            {
                await sandboxes.MakeDirAsync(caller, id, destination, "root", cancellationToken);
                written.Add(destination);
                var entries = await sandboxes.ListFilesAsync(caller, sourceId, path, 32, "root", cancellationToken);
                foreach (var entry in entries)
                {
                    await CopyEntryAsync(sourceId, id, entry, Join(destination, entry.Path[(path.TrimEnd('/').Length + 1)..]), mode, written, instruction);
                }
            }
            else
            {
                var target = intoDirectory || await IsDirectoryAsync(id, destination) ? Join(destination, Path.GetFileName(path)) : destination;
                await CopyEntryAsync(sourceId, id, top, target, mode, written, instruction);
            }
        }

        await ChownAsync(id, owner, written, instruction);
        await CommitAsync(state, key);
    }

    private async Task CopyEntryAsync(string from, string to, FileEntry entry, string target, int? mode, List<string> written, Instruction instruction)
    {
        switch (entry.Type)
        {
            case "dir":
                await sandboxes.MakeDirAsync(caller, to, target, "root", cancellationToken);
                break;
            case "file":
                await using (var data = await sandboxes.ReadFileAsync(caller, from, entry.Path, "root", cancellationToken))
                {
                    await sandboxes.WriteFileAsync(caller, to, target, data, mode ?? (entry.Mode & 0xFFF), "root", cancellationToken);
                }

                break;
            case "symlink" when entry.SymlinkTarget is { } link:
                await LinkAsync(to, link, target, instruction);
                break;
            default:
                log.Append(new BuildEvent { Type = "warning", Step = _step, Message = $"'{Shorten(entry.Path)}' is a {entry.Type}, which COPY does not take; skipped." });
                return;
        }

        written.Add(target);
    }

    /// <summary>Makes a symlink (with the image's ln: the agent writes files and directories only), its directory first.</summary>
    private async Task LinkAsync(string id, string linkTarget, string path, Instruction instruction)
    {
        await sandboxes.MakeDirAsync(caller, id, Path.GetDirectoryName(path)!, "root", cancellationToken);
        await RunToolAsync(id, ["ln", "-sfn", linkTarget, path], instruction);
    }

    /// <summary>Gives what a COPY wrote to <c>--chown</c>'s owner (with the image's chown, which resolves its names).</summary>
    private async Task ChownAsync(string sandboxId, string? owner, List<string> written, Instruction instruction)
    {
        if (owner is null || written.Count == 0)
        {
            return;
        }

        // As Docker: a user without a group gets the group of the same number as the user's id.
        if (!owner.Contains(':'))
        {
            if (!owner.All(char.IsAsciiDigit))
            {
                var id = await sandboxes.ExecAsync(caller, sandboxId, new CommandSpec { Argv = ["id", "-u", owner], User = "root", Cwd = "/" }, stdin: null, cancellationToken);
                if (id.ExitCode != 0)
                {
                    throw new BuildFailedException($"step {_step}/{_steps} (line {instruction.Line}) {instruction.Keyword} --chown={owner}: no such user in the image ({id.Stderr.Trim()}).");
                }

                owner = $"{owner}:{id.Stdout.Trim()}";
            }
            else
            {
                owner = $"{owner}:{owner}";
            }
        }

        foreach (var batch in written.Distinct(StringComparer.Ordinal).Chunk(256))
        {
            await RunToolAsync(sandboxId, ["chown", "-h", owner, .. batch], instruction);
        }
    }

    /// <summary>Runs one of the image's own tools (ln, chown) as root for a COPY; its failure fails the step.</summary>
    private async Task RunToolAsync(string id, IReadOnlyList<string> argv, Instruction instruction)
    {
        CommandResult result;
        try
        {
            result = await sandboxes.ExecAsync(caller, id, new CommandSpec { Argv = argv, User = "root", Cwd = "/" }, stdin: null, cancellationToken);
        }
        catch (CordonException ex)
        {
            throw new BuildFailedException($"step {_step}/{_steps} (line {instruction.Line}) {instruction.Keyword} needs '{argv[0]}' in the image, which could not run: {ex.Message}");
        }

        if (result.ExitCode != 0)
        {
            throw new BuildFailedException($"step {_step}/{_steps} (line {instruction.Line}) {instruction.Keyword}: {argv[0]} failed ({result.Stderr.Trim()}).");
        }
    }

    private async Task<bool> IsDirectoryAsync(string id, string path)
    {
        try
        {
            return (await sandboxes.StatFileAsync(caller, id, path, "root", cancellationToken)).Type == "dir";
        }
        catch (CordonException ex) when (ex.Code == ErrorCode.FileNotFound)
        {
            return false;
        }
    }

    /// <summary>Takes the step from the cache when it holds it (and nothing of this stage ran yet).</summary>
    private bool TryCached(StageState state, Instruction instruction, string key)
    {
        if (request.NoCache || state.Ran || store.UseBuildCache(key) is not { } snapshotId
            || sandboxes.FindSnapshot(caller, snapshotId) is not { Ready: true } snapshot
            || images.Find(snapshot.Image) is not { Status: ImageStates.Ready })
        {
            return false;
        }

        Step(state.Label, instruction, cached: true);
        _cached++;
        state.Key = key;
        state.Snapshot = snapshot.Id;
        state.Chain = snapshot.Layers;
        return true;
    }

    /// <summary>Saves the stage's sandbox as the step's snapshot and remembers it under the step's key.</summary>
    private async Task CommitAsync(StageState state, string key)
    {
        var snapshot = await sandboxes.SnapshotForBuildAsync(caller, state.Sandbox!, cancellationToken);
        if (options.BuildCacheEntries > 0)
        {
            store.SaveBuildCache(key, snapshot.Id, options.BuildCacheEntries);
        }

        state.Key = key;
        state.Snapshot = snapshot.Id;
        state.Chain = snapshot.Layers;
    }

    /// <summary>The stage's sandbox, made from its state (its last snapshot, or its base image) on first use.</summary>
    private async Task<string> SandboxAsync(StageState state)
    {
        state.Ran = true;
        if (state.Sandbox is { } id)
        {
            return id;
        }

        var sandbox = await sandboxes.CreateAsync(caller, new NewSandbox
        {
            Image = state.Snapshot is null ? state.BaseName : null,
            Snapshot = state.Snapshot,
            Cpu = Math.Min(Environment.ProcessorCount, options.MaxCpu),
            MemoryMiB = Math.Min(options.BuildMemoryMiB, options.MaxMemoryMiB),
            DiskMiB = Math.Min(options.BuildDiskMiB, options.MaxDiskMiB),
            MaxProcesses = Math.Min(1024, options.MaxProcesses),
            TimeoutSeconds = Math.Min(options.MaxTimeoutSeconds, options.MaxBuildSeconds + 60),
            Network = request.Network,
            BuildOf = request.Name,
        }, cancellationToken);
        _sandboxes.Add(sandbox.Id);
        state.Sandbox = sandbox.Id;
        return sandbox.Id;
    }

    private void DeclareArg(Instruction instruction, Dictionary<string, string?> into, Func<string, string?> lookup)
    {
        foreach (var word in ShellWords.Words(instruction.Arguments, lookup, dockerfile.Escape))
        {
            var equals = word.IndexOf('=');
            var name = equals < 0 ? word : word[..equals];
            if (!System.Text.RegularExpressions.Regex.IsMatch(name, "^[A-Za-z_][A-Za-z0-9_]*$"))
            {
                throw new BuildFailedException($"line {instruction.Line}: ARG '{Shorten(name)}' is not a variable name.");
            }

            into[name] = request.Args.TryGetValue(name, out var given) ? given : equals >= 0 ? word[(equals + 1)..] : lookup(name);
        }
    }

    /// <summary>ENV's pairs: <c>ENV a=1 b="two words"</c>, or the old <c>ENV name value with spaces</c>.</summary>
    private IEnumerable<(string Name, string Value)> KeyValues(Instruction instruction, Func<string, string?> lookup)
    {
        var words = ShellWords.Words(instruction.Arguments, lookup, dockerfile.Escape);
        if (words.Count > 0 && !words[0].Contains('='))
        {
            var space = instruction.Arguments.IndexOfAny([' ', '\t']);
            if (space < 0)
            {
                throw new DockerfileException("ENV needs a value: ENV NAME=value");
            }

            yield return (Name(words[0]), ShellWords.Word(instruction.Arguments[(space + 1)..].Trim(), lookup, dockerfile.Escape));
            yield break;
        }

        foreach (var word in words)
        {
            var equals = word.IndexOf('=');
            if (equals <= 0)
            {
                throw new DockerfileException($"'{Shorten(word)}' is not NAME=value");
            }

            yield return (Name(word[..equals]), word[(equals + 1)..]);
        }

        static string Name(string name) => System.Text.RegularExpressions.Regex.IsMatch(name, "^[A-Za-z_][A-Za-z0-9_.-]*$")
            ? name : throw new DockerfileException($"'{Shorten(name)}' is not a variable name");
    }

    /// <summary>Logs the start of the current step (<see cref="_step"/>).</summary>
    private void Step(string label, Instruction instruction, bool? cached)
        => log.Append(new BuildEvent { Type = "step", Step = _step, Steps = _steps, Stage = label, Instruction = Shorten(instruction.Text), Cached = cached });

    /// <summary>Whose step cache the build uses: the server's (an admin's build) or one tenant's; the first step's key
    /// holds it, so no step of one tenant is ever taken from another's cache.</summary>
    private string Owner => caller.Admin ? "" : caller.KeyId;

    private static string Key(params string[] parts)
        => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\0', parts))));

    private static string Absolute(string workDir, string path)
    {
        var combined = path.StartsWith('/') ? path : workDir.TrimEnd('/') + "/" + path;
        return "/" + (GlobPattern.Clean(combined) ?? "");
    }

    private static string Join(string directory, string relative) => Absolute(directory, relative);

    private static string UserPart(string user) => user.Split(':')[0];

    private static bool IsArchiveName(string path)
        => path.EndsWith(".tar", StringComparison.Ordinal) || path.EndsWith(".tar.gz", StringComparison.Ordinal) || path.EndsWith(".tgz", StringComparison.Ordinal)
           || path.EndsWith(".tar.xz", StringComparison.Ordinal) || path.EndsWith(".tar.bz2", StringComparison.Ordinal) || path.EndsWith(".tar.zst", StringComparison.Ordinal);

    private static string Shorten(string text) => text.Length > 200 ? text[..200] + "…" : text;

    /// <summary>Destroys the build's sandboxes (its snapshots stay: images and the step cache hold them).</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var id in _sandboxes)
        {
            try
            {
                await sandboxes.DestroyAsync(caller, id, "the image builder", CancellationToken.None);
            }
            catch (CordonException)
            {
                // gone already
            }
        }
    }
}
