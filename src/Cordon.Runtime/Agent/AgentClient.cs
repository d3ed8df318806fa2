using System.Text.Json.Serialization.Metadata;
using Cordon.Protocol;

namespace Cordon.Runtime.Agent;

/// <summary>Speaks the agent protocol to one sandbox's agent, whatever runtime carries the connection.</summary>
/// <param name="connect">Opens a connection to the agent.</param>
/// <param name="answered">Called whenever the agent answers a request (its first frame arrived).</param>
public sealed class AgentClient(Func<CancellationToken, ValueTask<Stream>> connect, Action? answered = null)
{
    /// <summary>Starts a command; returns once the agent reports it running.</summary>
    /// <exception cref="AgentErrorException">The agent refused (unknown user, missing working directory …).</exception>
    public async Task<ExecSession> StartExecAsync(ExecRequest request, CancellationToken cancellationToken)
    {
        var frames = await OpenAsync(request, cancellationToken);
        try
        {
            var frame = await ReadRequiredAsync(frames, cancellationToken);
            var started = frame.Kind switch
            {
                FrameKind.Started => FrameStream.ParseJson(frame, AgentJsonContext.Default.StartedMessage),
                _ => throw Unexpected(frame),
            };
            return new ExecSession(frames, started.Pid);
        }
        catch
        {
            await frames.DisposeAsync();
            throw;
        }
    }

    /// <summary>Opens a file for reading.</summary>
    public async Task<FileDownload> ReadFileAsync(string path, string? user, CancellationToken cancellationToken)
    {
        var frames = await OpenAsync(new ReadFileRequest { Path = path, User = user }, cancellationToken);
        try
        {
            var entry = await ReadResponseAsync(frames, AgentJsonContext.Default.FileEntry, cancellationToken);
            return new FileDownload(frames, entry);
        }
        catch
        {
            await frames.DisposeAsync();
            throw;
        }
    }

    /// <summary>Writes <paramref name="content"/> to a file; the file changes only once all of it arrived.</summary>
    public async Task<FileEntry> WriteFileAsync(WriteFileRequest request, Stream content, CancellationToken cancellationToken)
    {
        await using var frames = await OpenAsync(request, cancellationToken);
        var buffer = new byte[FrameStream.ChunkSize];
        int n;
        try
        {
            while ((n = await content.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await frames.WriteAsync(FrameKind.Data, buffer.AsMemory(0, n), cancellationToken);
            }

            await frames.WriteAsync(FrameKind.DataEnd, ReadOnlyMemory<byte>.Empty, cancellationToken);
        }
        catch (IOException)
        {
            // The agent stops reading when the write fails (disk full, permission …) and says why before it
            // closes: that answer is still in our receive buffer.
        }

        return await ReadResponseAsync(frames, AgentJsonContext.Default.FileEntry, cancellationToken);
    }

    public Task<ListResponse> ListAsync(string path, int depth, string? user, CancellationToken cancellationToken)
        => RequestAsync(new ListRequest { Path = path, Depth = depth, User = user }, AgentJsonContext.Default.ListResponse, cancellationToken);

    public Task<FileEntry> StatAsync(string path, string? user, CancellationToken cancellationToken)
        => RequestAsync(new StatRequest { Path = path, User = user }, AgentJsonContext.Default.FileEntry, cancellationToken);

    public Task<FileEntry> MakeDirAsync(string path, string? user, CancellationToken cancellationToken)
        => RequestAsync(new MakeDirRequest { Path = path, User = user }, AgentJsonContext.Default.FileEntry, cancellationToken);

    public Task<FileEntry> RenameAsync(string from, string to, string? user, CancellationToken cancellationToken)
        => RequestAsync(new RenameRequest { From = from, To = to, User = user }, AgentJsonContext.Default.FileEntry, cancellationToken);

    public Task RemoveAsync(string path, string? user, CancellationToken cancellationToken)
        => EmptyRequestAsync(new RemoveRequest { Path = path, User = user }, cancellationToken);

    /// <summary>A request answered by an empty response.</summary>
    private async Task EmptyRequestAsync(AgentRequest request, CancellationToken cancellationToken)
    {
        await using var frames = await OpenAsync(request, cancellationToken);
        var frame = await ReadRequiredAsync(frames, cancellationToken);
        if (frame.Kind != FrameKind.Response)
        {
            throw Unexpected(frame);
        }
    }

    /// <summary>Starts code in a context; returns once its turn came (earlier runs in the context ended).</summary>
    /// <exception cref="AgentErrorException">Unknown or dead context, unknown language, interpreter failed to start.</exception>
    public async Task<CodeRunSession> StartCodeAsync(RunCodeRequest request, CancellationToken cancellationToken)
    {
        var frames = await OpenAsync(request, cancellationToken);
        try
        {
            var frame = await ReadRequiredAsync(frames, cancellationToken);
            return frame.Kind == FrameKind.Started ? new CodeRunSession(frames) : throw Unexpected(frame);
        }
        catch
        {
            await frames.DisposeAsync();
            throw;
        }
    }

    /// <summary>Connects to a TCP port on the sandbox's loopback; the stream carries the connection.</summary>
    /// <exception cref="AgentErrorException">not_found when nothing listens there.</exception>
    public async Task<TunnelStream> ConnectPortAsync(int port, CancellationToken cancellationToken)
    {
        var frames = await OpenAsync(new ConnectPortRequest { Port = port }, cancellationToken);
        try
        {
            var frame = await ReadRequiredAsync(frames, cancellationToken);
            return frame.Kind == FrameKind.Response ? new TunnelStream(frames) : throw Unexpected(frame);
        }
        catch
        {
            await frames.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts watching a directory; returns once watching, with the changes to come.</summary>
    public async Task<WatchSession> WatchAsync(string path, bool recursive, string? user, CancellationToken cancellationToken)
    {
        var frames = await OpenAsync(new WatchRequest { Path = path, Recursive = recursive, User = user }, cancellationToken);
        try
        {
            var frame = await ReadRequiredAsync(frames, cancellationToken);
            return frame.Kind == FrameKind.Response ? new WatchSession(frames) : throw Unexpected(frame);
        }
        catch
        {
            await frames.DisposeAsync();
            throw;
        }
    }

    public Task<ContextInfo> CreateContextAsync(CreateContextRequest request, CancellationToken cancellationToken)
        => RequestAsync(request, AgentJsonContext.Default.ContextInfo, cancellationToken);

    public Task<ContextListResponse> ListContextsAsync(CancellationToken cancellationToken)
        => RequestAsync(new ListContextsRequest(), AgentJsonContext.Default.ContextListResponse, cancellationToken);

    public Task<ContextInfo> RestartContextAsync(string id, CancellationToken cancellationToken)
        => RequestAsync(new RestartContextRequest { Id = id }, AgentJsonContext.Default.ContextInfo, cancellationToken);

    public Task DeleteContextAsync(string id, CancellationToken cancellationToken)
        => EmptyRequestAsync(new DeleteContextRequest { Id = id }, cancellationToken);

    public Task InterruptContextAsync(string id, CancellationToken cancellationToken)
        => EmptyRequestAsync(new InterruptContextRequest { Id = id }, cancellationToken);

    /// <summary>Adds variables to those every command inherits (a sandbox claimed from a warm pool).</summary>
    public Task ConfigureAsync(IReadOnlyDictionary<string, string> env, CancellationToken cancellationToken)
        => EmptyRequestAsync(new ConfigureRequest { Env = env }, cancellationToken);

    public Task<InfoResponse> InfoAsync(CancellationToken cancellationToken)
        => RequestAsync(new InfoRequest(), AgentJsonContext.Default.InfoResponse, cancellationToken);

    private async Task<T> RequestAsync<T>(AgentRequest request, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        await using var frames = await OpenAsync(request, cancellationToken);
        return await ReadResponseAsync(frames, typeInfo, cancellationToken);
    }

    private async Task<FrameStream> OpenAsync(AgentRequest request, CancellationToken cancellationToken)
    {
        var frames = new FrameStream(await connect(cancellationToken));
        try
        {
            await frames.WriteJsonAsync(FrameKind.Request, request, AgentRequest.TypeInfo, cancellationToken);
            return frames;
        }
        catch
        {
            await frames.DisposeAsync();
            throw;
        }
    }

    private async Task<T> ReadResponseAsync<T>(FrameStream frames, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        var frame = await ReadRequiredAsync(frames, cancellationToken);
        return frame.Kind == FrameKind.Response ? FrameStream.ParseJson(frame, typeInfo) : throw Unexpected(frame);
    }

    private async Task<Frame> ReadRequiredAsync(FrameStream frames, CancellationToken cancellationToken)
    {
        var frame = await frames.ReadAsync(cancellationToken)
            ?? throw new AgentErrorException(AgentErrorCodes.Internal, "The sandbox's agent closed the connection without answering; the sandbox may have stopped.");
        answered?.Invoke();
        return frame;
    }

    internal static Exception Unexpected(Frame frame)
    {
        if (frame.Kind == FrameKind.Error)
        {
            var error = FrameStream.ParseJson(frame, AgentJsonContext.Default.ErrorMessage);
            return new AgentErrorException(error.Code, error.Message);
        }

        return new InvalidDataException($"Unexpected {frame.Kind} frame from the agent.");
    }
}
