using Cordon.Protocol;
using Cordon.Runtime;
using Cordon.Runtime.Agent;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>The one place where a failure of a sandbox's agent, or of the connection to it, becomes a
/// <see cref="CordonException"/>: for a request and in the middle of a stream alike, so every interface gets the
/// same code for the same failure.</summary>
internal static class AgentFailures
{
    /// <summary>The agent's refusal or a broken connection as an expected failure; null for anything else (a bug).</summary>
    /// <param name="notFound">The code for the agent's "not found" (the thing the call was about: a file, a context …).</param>
    public static CordonException? Map(Exception ex, ErrorCode notFound = ErrorCode.FileNotFound) => ex switch
    {
        CordonException known => known,
        AgentErrorException agent => new CordonException(agent.Code switch
        {
            AgentErrorCodes.NotFound => notFound,
            AgentErrorCodes.Conflict => ErrorCode.Conflict,
            AgentErrorCodes.InvalidArgument or AgentErrorCodes.NotADirectory or AgentErrorCodes.IsADirectory => ErrorCode.InvalidRequest,
            AgentErrorCodes.PermissionDenied => ErrorCode.PermissionDenied,
            AgentErrorCodes.AlreadyExists => ErrorCode.AlreadyExists,
            AgentErrorCodes.NoSpace => ErrorCode.DiskFull,
            _ => ErrorCode.AgentError,
        }, agent.Message, agent),
        SandboxRuntimeException runtime => new CordonException(ErrorCode.SandboxUnreachable, runtime.Message, runtime),
        MessageTooLargeException large => new CordonException(ErrorCode.ResultTooLarge,
            $"The sandbox's answer is larger than {FrameStream.MaxMessage >> 20} MiB: ask for less (a smaller directory or depth, a smaller result; save large output to a file and read it as a file).", large),
        IOException or InvalidDataException or ObjectDisposedException => new CordonException(ErrorCode.SandboxUnreachable,
            "The connection to the sandbox broke (" + ex.Message.TrimEnd('.') + "); the sandbox may have stopped or been destroyed.", ex),
        _ => null,
    };

    /// <summary>Runs an agent call; its failures become <see cref="CordonException"/>s.</summary>
    public static async Task<T> CallAsync<T>(Func<Task<T>> call, ErrorCode notFound = ErrorCode.FileNotFound)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (ex is not OperationCanceledException && Map(ex, notFound) is { } mapped)
        {
            throw mapped;
        }
    }

    public static async Task CallAsync(Func<Task> call, ErrorCode notFound = ErrorCode.FileNotFound)
    {
        try
        {
            await call();
        }
        catch (Exception ex) when (ex is not OperationCanceledException && Map(ex, notFound) is { } mapped)
        {
            throw mapped;
        }
    }

    /// <summary>Reads a stream of the agent's; a failure in the middle becomes a <see cref="CordonException"/>.</summary>
    public static async IAsyncEnumerable<T> ReadAsync<T>(IAsyncEnumerable<T> events, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var enumerator = events.GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            bool more;
            try
            {
                more = await enumerator.MoveNextAsync();
            }
            catch (Exception ex) when (ex is not OperationCanceledException && Map(ex) is { } mapped)
            {
                throw mapped;
            }

            if (!more)
            {
                yield break;
            }

            yield return enumerator.Current;
        }
    }
}
