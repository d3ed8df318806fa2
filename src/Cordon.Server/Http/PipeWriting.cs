using System.IO.Pipelines;

namespace Cordon.Server.Http;

/// <summary>Fills a pipe from a producer on a task of its own. A producer that fails completes the pipe with its
/// exception, so the reader fails too instead of taking what was written so far for the whole.</summary>
public static class PipeWriting
{
    public static Task RunAsync(PipeWriter writer, Func<Stream, Task> produce) => Task.Run(async () =>
    {
        try
        {
            await using (var stream = writer.AsStream(leaveOpen: true))
            {
                await produce(stream);
            }

            await writer.CompleteAsync();
        }
        catch (Exception ex)
        {
            await writer.CompleteAsync(ex);
            throw;
        }
    });
}
