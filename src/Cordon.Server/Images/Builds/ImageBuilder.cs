using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Cordon.Server.State;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Images.Builds;

/// <summary>Builds images from Dockerfiles: checks a build and starts it in the background, keeps each build's log,
/// and empties the step cache on request.</summary>
public sealed partial class ImageBuilder(
    ImageService images, ImageBuildQueue queue, SandboxService sandboxes, StateStore store, IOptions<CordonOptions> options, ILogger<ImageBuilder> logger,
    IHostApplicationLifetime lifetime)
{
    /// <summary>Logs of ended builds kept for reading (the oldest go first).</summary>
    private const int KeptLogs = 64;

    private readonly Lock _lock = new();
    private readonly ConcurrentDictionary<string, (BuildLog Log, long Started)> _logs = new(StringComparer.Ordinal);

    private CordonOptions Options => options.Value;

    /// <summary>The log of the last build (since the server started) of the caller's image <paramref name="name"/>, or null.</summary>
    public BuildLog? LogOf(CallerIdentity caller, string name) => _logs.TryGetValue(ImageService.StoredName(caller, name), out var entry) ? entry.Log : null;

    /// <summary>Checks a build (its context, its Dockerfile, what it names) and runs it in the background.</summary>
    /// <returns>The image as it shows meanwhile (<c>building</c> for a new name, else the image the build will
    /// replace) and the build's log.</returns>
    public async Task<BuildStarted> StartAsync(CallerIdentity caller, BuildRequest request, Stream body, CancellationToken cancellationToken)
    {
        ImageService.ValidateName(request.Name);
        var local = request.Name;
        request = request with
        {
            Name = ImageService.StoredName(caller, request.Name),
            PullBase = request.PullBase is { } pull ? pull with { Name = ImageService.StoredName(caller, pull.Name!) } : null,
        };
        ValidateArgs(request.Args);
        foreach (var (what, command) in new[] { ("startCmd", request.StartCmd), ("readyCmd", request.ReadyCmd) })
        {
            if (command is not null && (command.Trim().Length == 0 || command.Length > 65536 || command.Contains('\0')))
            {
                throw CordonException.Invalid($"{what} must be a shell command line of up to 65,536 characters, without NUL.");
            }
        }

        if (request.ReadyCmd is not null && request.StartCmd is null)
        {
            throw CordonException.Invalid("readyCmd waits for the start command's service: give startCmd too.");
        }
        if (!await sandboxes.CanSnapshotAsync(cancellationToken))
        {
            throw new CordonException(ErrorCode.SnapshotsUnavailable, "Builds save each step as a snapshot, and this host cannot take snapshots now (GET /health says why).");
        }

        var scratch = Path.Combine(Options.DataDir, "builds", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.GetDirectoryName(scratch)!, Runtime.Modes.RootOnly);
        Directory.CreateDirectory(scratch, Runtime.Modes.RootOnly);
        try
        {
            BuildContext context;
            Dockerfile dockerfile;
            try
            {
                context = await BuildContext.SaveAsync(body, Path.Combine(scratch, "context.tar"), Options.MaxUploadBytes, cancellationToken);
                var text = await context.ReadTextAsync(request.Dockerfile, Dockerfile.MaxLength, cancellationToken)
                    ?? throw CordonException.Invalid($"The build context has no file '{request.Dockerfile}': put a Dockerfile at its root, or name it (dockerfile=path/in/context).");
                dockerfile = Dockerfile.Parse(text);
            }
            catch (InvalidDataException ex)
            {
                throw CordonException.Invalid($"The build context was refused: {ex.Message}.");
            }
            catch (DockerfileException ex)
            {
                throw CordonException.Invalid($"The Dockerfile {(ex.Line is { } line ? $"(line {line}) " : "")}cannot be built: {ex.Message}.");
            }

            var stages = StagesFor(dockerfile, request.Target);
            BuildLog log;
            lock (_lock)
            {
                if (_logs.TryGetValue(request.Name, out var running) && !running.Log.Completed)
                {
                    throw new CordonException(ErrorCode.ImageBusy, $"The image '{local}' is being built already: follow that build (GET /v1/images/{local}/build) and build again after it.");
                }

                log = new BuildLog();
                _logs[request.Name] = (log, Environment.TickCount64);
                foreach (var old in _logs.Where(l => l.Value.Log.Completed).OrderBy(l => l.Value.Started).Take(Math.Max(0, _logs.Count - KeptLogs)).ToList())
                {
                    _logs.TryRemove(old.Key, out _);
                }
            }

            ImageInfo image;
            try
            {
                image = ImageService.View(caller, await images.BeginBuildAsync(caller, request.Name, cancellationToken));
            }
            catch
            {
                log.Append(new BuildEvent { Type = "done", Status = ImageStates.Failed, Message = "The build did not start." });
                throw;
            }

            _ = Task.Run(() => RunAsync(caller, request, dockerfile, stages, context, log, scratch));
            return new BuildStarted(image, log);
        }
        catch
        {
            Directory.Delete(scratch, recursive: true);
            throw;
        }
    }

    /// <summary>Empties the step cache: the next builds run every step (snapshots only it held go shortly after).</summary>
    public int ClearCache() => store.ClearBuildCache();

    private async Task RunAsync(CallerIdentity caller, BuildRequest request, Dockerfile dockerfile, List<BuildStage> stages, BuildContext context, BuildLog log, string scratch)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStopping);
        limit.CancelAfter(TimeSpan.FromSeconds(Options.MaxBuildSeconds));
        ImageInfo? built = null;
        string? failure = null;
        BuildFailedException? failedStep = null;
        await using var run = new BuildRun(images, sandboxes, store, Options, caller, request, dockerfile, stages, context, log, limit.Token);
        try
        {
            LogStarted(request.Name, run.Steps);
            if (request.PullBase is { } pull)
            {
                await PullBaseAsync(caller, pull, log, limit.Token);
            }

            built = await run.ExecuteAsync();
        }
        catch (BuildFailedException ex)
        {
            failure = ex.Message;
            failedStep = ex;
        }
        catch (DockerfileException ex)
        {
            failure = ex.Message;
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            failure = "the server stopped during the build; build again";
        }
        catch (OperationCanceledException)
        {
            failure = $"it took longer than {Options.MaxBuildSeconds} s, the most a build may take (Cordon:MaxBuildSeconds)";
        }
        catch (CordonException ex)
        {
            failure = ex.Message;
        }
        catch (Exception ex)
        {
            LogCrashed(request.Name, ex);
            failure = "an internal error stopped it (the server's log has the details)";
        }

        var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        try
        {
            var lastLines = failedStep?.LastLines is { Count: > 0 } lines ? $" Its last output: {string.Join(" | ", lines.TakeLast(5))}" : "";
            images.EndBuild(request.Name, built, failure is null ? null : $"The build failed: {failure}{lastLines}");
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }

        if (built is not null)
        {
            LogBuilt(request.Name, seconds, run.Cached, run.Steps);
            log.Append(new BuildEvent { Type = "done", Status = ImageStates.Ready, Message = $"Built '{ImageService.LocalName(request.Name)}' in {seconds:0.0} s ({run.Cached} of {run.Steps} steps from the cache)." });
        }
        else
        {
            LogFailed(request.Name, failure!);
            log.Append(new BuildEvent { Type = "error", Message = $"The build failed: {failure}", ExitCode = failedStep?.ExitCode, LastLines = failedStep?.LastLines });
            log.Append(new BuildEvent { Type = "done", Status = ImageStates.Failed, Message = $"The build failed: {failure}" });
        }
    }

    /// <summary>Pulls the build's base image unless an image of its name is ready here (then that one is used).</summary>
    /// <param name="pull">The pull, its name stored (in the caller's namespace).</param>
    private async Task PullBaseAsync(CallerIdentity caller, PullImageRequest pull, BuildLog log, CancellationToken cancellationToken)
    {
        var name = pull.Name!;
        if (images.Find(name) is { Status: ImageStates.Ready })
        {
            log.Append(new BuildEvent { Type = "info", Message = $"Using the image '{ImageService.LocalName(name)}' of this server for {pull.From}." });
            return;
        }

        log.Append(new BuildEvent { Type = "info", Message = $"Pulling {pull.From} as '{ImageService.LocalName(name)}'." });
        try
        {
            await queue.StartPullAsync(caller, pull with { Name = ImageService.LocalName(name) }, cancellationToken);
        }
        catch (CordonException ex) when (ex.Code == ErrorCode.ImageBusy)
        {
            // pulled or pulling by another request meanwhile: wait for that one
        }

        ImageInfo? image;
        while ((image = images.Find(name)) is { Status: ImageStates.Building })
        {
            await Task.Delay(200, cancellationToken);
        }

        if (image is not { Status: ImageStates.Ready })
        {
            throw new BuildFailedException($"the base image {pull.From} could not be pulled: {image?.Message ?? "it is gone"}");
        }

        log.Append(new BuildEvent { Type = "info", Message = $"Pulled {pull.From}." });
    }

    /// <summary>The stages a build of <paramref name="target"/> needs, in order: it, and those it starts FROM or copies
    /// from (the others are skipped, as BuildKit does).</summary>
    private static List<BuildStage> StagesFor(Dockerfile dockerfile, string? target)
    {
        var last = target is null ? dockerfile.Stages[^1]
            : dockerfile.Stages.FirstOrDefault(s => s.Name == target.ToLowerInvariant())
              ?? throw CordonException.Invalid($"The Dockerfile has no stage named '{target}' (its stages: {string.Join(", ", dockerfile.Stages.Select(s => s.Name ?? s.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)))}).");
        var needed = new HashSet<int>();
        var pending = new Stack<BuildStage>([last]);
        while (pending.TryPop(out var stage))
        {
            if (!needed.Add(stage.Index))
            {
                continue;
            }

            var references = stage.Instructions.Where(i => i.Flags.ContainsKey("from")).Select(i => i.Flags["from"]).Append(stage.Base);
            foreach (var reference in references)
            {
                if (dockerfile.Stages.FirstOrDefault(s => s.Index < stage.Index && (s.Name == reference.ToLowerInvariant() || s.Index.ToString(System.Globalization.CultureInfo.InvariantCulture) == reference)) is { } earlier)
                {
                    pending.Push(earlier);
                }
            }
        }

        return [.. dockerfile.Stages.Where(s => needed.Contains(s.Index))];
    }

    private static void ValidateArgs(IReadOnlyDictionary<string, string> args)
    {
        if (args.Count > 64)
        {
            throw CordonException.Invalid("At most 64 build args may be given.");
        }

        foreach (var (name, value) in args)
        {
            if (!ArgNameRegex().IsMatch(name) || value.Length > 65536 || value.Contains('\0'))
            {
                throw CordonException.Invalid($"The build arg '{(name.Length > 64 ? name[..64] : name)}' is not NAME=value (a name of letters, digits and '_', a value up to 65,536 characters without NUL).");
            }
        }
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    private static partial Regex ArgNameRegex();

    [LoggerMessage(EventId = 3201, Level = LogLevel.Information, Message = "Building image {Name}: {Steps} steps")]
    private partial void LogStarted(string name, int steps);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Information, Message = "Built image {Name} in {Seconds:0.0} s ({Cached} of {Steps} steps cached)")]
    private partial void LogBuilt(string name, double seconds, int cached, int steps);

    [LoggerMessage(EventId = 3203, Level = LogLevel.Warning, Message = "Building image {Name} failed: {Failure}")]
    private partial void LogFailed(string name, string failure);

    [LoggerMessage(EventId = 3204, Level = LogLevel.Error, Message = "Building image {Name} crashed")]
    private partial void LogCrashed(string name, Exception exception);
}
