using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.State;
using Microsoft.Extensions.Logging;

namespace Cordon.Server.Sandboxes;

/// <summary>Images with a start command (a template's server): every new sandbox starts it, and the create answers
/// once the image's ready command succeeds.</summary>
public sealed partial class SandboxService
{
    /// <summary>How often the ready command is tried at first; the wait doubles up to <see cref="ReadyPollMax"/>.</summary>
    private static readonly TimeSpan ReadyPollMin = TimeSpan.FromMilliseconds(1);

    private static readonly TimeSpan ReadyPollMax = TimeSpan.FromMilliseconds(200);

    /// <summary>Starts the image's start command in the new sandbox as a background command, then runs its ready
    /// command until it succeeds. On failure the sandbox is destroyed and the create fails with the command's last
    /// output, so no caller ever gets a sandbox whose service is not up.</summary>
    private async Task StartImageCommandAsync(CallerIdentity caller, SandboxRecord record, ImageInfo image, CancellationToken cancellationToken)
    {
        var cwd = image.WorkingDir == "/" ? null : image.WorkingDir;
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        var tries = 0;
        try
        {
            var (handle, _) = await StartBackgroundAsync(caller, record.Id, CommandSpec.Shell(image.StartCmd!) with
            {
                User = image.User,
                Cwd = cwd,
                TimeoutSeconds = _options.MaxTimeoutSeconds,
            }, subscribe: false, cancellationToken);
            var started = stopwatch.Elapsed.TotalMilliseconds;
            var deadline = DateTimeOffset.UtcNow.AddSeconds(_options.StartReadySeconds);
            var wait = ReadyPollMin;
            string? lastFailure = null;
            while (image.ReadyCmd is { } ready)
            {
                if (!handle.Running)
                {
                    throw Failed($"its start command ended (exit code {handle.Exit?.ExitCode}) before the ready command succeeded. Its last output: {Tail(handle.Stderr.ToText("") + handle.Stdout.ToText(""))}");
                }

                tries++;
                var result = await ExecAsync(caller, record.Id, CommandSpec.Shell(ready) with { User = image.User, Cwd = cwd, TimeoutSeconds = 30 }, stdin: null, cancellationToken);
                if (result.ExitCode == 0)
                {
                    break;
                }

                lastFailure = Tail(result.Stderr + result.Stdout);
                if (DateTimeOffset.UtcNow > deadline)
                {
                    throw Failed($"its ready command did not succeed within {_options.StartReadySeconds} s (Cordon:StartReadySeconds); it last said: {lastFailure}");
                }

                await Task.Delay(wait, cancellationToken);
                wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, ReadyPollMax.Ticks));
            }

            LogReady(record.Id, stopwatch.Elapsed.TotalMilliseconds, started, tries);
            _store.AddEvent(record.Id, "ready", image.ReadyCmd is null ? "The image's start command is running." : "The image's start command is running and its ready command succeeded.");
        }
        catch (Exception ex)
        {
            await DestroyAsync(CallerIdentity.System, record.Id, "a failed start command", CancellationToken.None);
            if (ex is CordonException { Code: ErrorCode.StartFailed })
            {
                throw;
            }

            throw ex is CordonException cordon
                ? new CordonException(ErrorCode.StartFailed, $"The sandbox from image '{image.Name}' could not start its start command: {cordon.Message}", cordon) { Subject = image.Name }
                : ex;
        }

        CordonException Failed(string why) => new(ErrorCode.StartFailed, $"The sandbox from image '{image.Name}' was removed: {why} Fix the image's start or ready command, or its service.") { Subject = image.Name };

        static string Tail(string text)
        {
            var trimmed = text.Trim();
            return trimmed.Length == 0 ? "(nothing)" : trimmed.Length > 500 ? "…" + trimmed[^500..] : trimmed;
        }
    }

    [LoggerMessage(EventId = 4103, Level = LogLevel.Debug, Message = "Sandbox {Id}: its start command runs and its ready command succeeded after {Ms:F1} ms (start {StartMs:F1} ms, {Tries} ready tries)")]
    private partial void LogReady(string id, double ms, double startMs, int tries);
}
