using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Images;

/// <summary>Builds the default image in the background: at start (when enabled) and on request, one build at a time.</summary>
public sealed partial class ImageBuildQueue(ImageService images, IOptions<CordonOptions> options, ILogger<ImageBuildQueue> logger, IHostApplicationLifetime lifetime)
{
    private readonly Lock _lock = new();
    private Task _current = Task.CompletedTask;

    /// <summary>Starts a build unless one is running.</summary>
    public void BuildDefault(bool rebuild)
    {
        lock (_lock)
        {
            if (!_current.IsCompleted)
            {
                return;
            }

            _current = Task.Run(async () =>
            {
                try
                {
                    await images.PrepareDefaultAsync(rebuild, lifetime.ApplicationStopping);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogFailed(options.Value.DefaultImage, ex.Message);
                }
                catch (OperationCanceledException)
                {
                }
            });
        }
    }

    /// <summary>Checks a pull, reserves its name and pulls in the background (several pulls may run at once; the
    /// server's stop cancels them, and a cancelled pull leaves no image behind).</summary>
    /// <returns>The image (under its stored name), <c>building</c> until it is ready or failed.</returns>
    public async Task<Protocol.Api.ImageInfo> StartPullAsync(Auth.CallerIdentity caller, Protocol.Api.PullImageRequest request, CancellationToken cancellationToken)
    {
        var (image, reference, credentials) = await images.StartPullAsync(caller, request, cancellationToken);
        _ = Task.Run(async () =>
        {
            try
            {
                await images.PullAsync(caller, image.Name, reference, credentials, lifetime.ApplicationStopping);
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception ex)
            {
                LogFailed(image.Name, ex.Message);
            }
        });
        return image;
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Error, Message = "Preparing image {Name} failed: {Message}")]
    private partial void LogFailed(string name, string message);
}
