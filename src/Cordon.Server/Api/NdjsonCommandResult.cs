using System.Text;
using Cordon.Protocol.Api;
using Cordon.Server.Errors;
using Cordon.Server.Http;
using Cordon.Server.Sandboxes;

namespace Cordon.Server.Api;

/// <summary>Streams a running command as NDJSON, one flushed line per event: <c>started</c>, <c>stdout</c> and
/// <c>stderr</c> text, <c>exit</c>. The answer is already 200 by then: a failure midway is an <c>error</c> line.</summary>
internal sealed class NdjsonCommandResult(RunningCommand command, string? stdin) : Microsoft.AspNetCore.Http.IResult
{
    public async Task ExecuteAsync(Microsoft.AspNetCore.Http.HttpContext context)
    {
        await using var _ = command;
        var cancellationToken = context.RequestAborted;
        Ndjson.Begin(context);
        await WriteAsync(context, new ExecStreamEvent { Type = "started", Pid = command.Pid }, cancellationToken);
        try
        {
            if (stdin is not null)
            {
                await command.WriteStdinAsync(Encoding.UTF8.GetBytes(stdin), cancellationToken);
                await command.CloseStdinAsync(cancellationToken);
            }

            await foreach (var e in command.ReadEventsAsync(cancellationToken))
            {
                if (e.Exit is { } exit)
                {
                    await WriteAsync(context, new ExecStreamEvent { Type = "exit", ExitCode = exit.ExitCode, Signal = exit.Signal, TimedOut = exit.TimedOut, DurationMs = exit.DurationMs }, cancellationToken);
                }
                else if (e.Text.Length > 0)
                {
                    await WriteAsync(context, new ExecStreamEvent { Type = e.Stream == CommandStream.Stdout ? "stdout" : "stderr", Data = e.Text }, cancellationToken);
                }
            }
        }
        catch (CordonException ex)
        {
            await WriteAsync(context, new ExecStreamEvent { Type = "error", Message = ex.Message }, cancellationToken);
        }
    }

    private static Task WriteAsync(Microsoft.AspNetCore.Http.HttpContext context, ExecStreamEvent e, CancellationToken cancellationToken)
        => Ndjson.WriteAsync(context, e, ApiJsonContext.Default.ExecStreamEvent, cancellationToken);
}
