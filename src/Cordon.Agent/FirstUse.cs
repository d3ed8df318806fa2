using System.Text.Json;
using Cordon.Protocol;

namespace Cordon.Agent;

/// <summary>The one-time work of a sandbox's first command, done while the agent waits for it.</summary>
/// <remarks>
/// Create answers as soon as crun has started the agent, so the agent is idle while that answer travels and
/// the client sends its first command. Without this, that command paid in full for what a process does only
/// once: System.Text.Json building the metadata of the exec request and of the frames that answer it (reading
/// custom attributes through reflection), and the runtime starting the threads a command needs — the timer
/// thread (every command has a timeout and an output grace period), the thread pool's gate thread and a
/// second worker — each of whose starts NativeAOT waits out by yielding.
/// </remarks>
internal static class FirstUse
{
    public static void Prepare()
    {
        AgentRequest.Read(new Frame(FrameKind.Request, """{"op":"exec","argv":["true"],"env":{"A":"b"},"cwd":"/","timeoutMs":1000}"""u8.ToArray()));
        JsonSerializer.SerializeToUtf8Bytes(new StartedMessage(1), AgentJsonContext.Default.StartedMessage);
        JsonSerializer.SerializeToUtf8Bytes(new ExitMessage(), AgentJsonContext.Default.ExitMessage);

        // A timer that is due starts the runtime's timer thread; disposed, it never fires.
        using var timer = new Timer(static _ => { }, null, TimeSpan.FromHours(1), Timeout.InfiniteTimeSpan);

        // Work queued to the thread pool starts its gate thread and, up to one per CPU, its workers; a command
        // keeps two of them busy at once (its output pumps), and its first request started them otherwise.
        for (var i = 0; i < Environment.ProcessorCount; i++)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static _ => { }, null);
        }

        // What this allocated is given back if no request comes soon.
        IdleTrim.Touch();
    }
}
