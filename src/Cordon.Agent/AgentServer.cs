using System.Diagnostics;
using System.Net.Sockets;
using Cordon.Agent.Code;
using Cordon.Protocol;

namespace Cordon.Agent;

/// <summary>Accepts connections on the agent socket and serves one request per connection, many at once.</summary>
internal sealed class AgentServer(SandboxEnvironment environment, CommandRunner commands, CodeContexts contexts, FileService files)
{
    public const string Version = "0.1.0";
    private static readonly Stopwatch Uptime = Stopwatch.StartNew();

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var listener = environment.ListenFd is { } fd ? Inherited(fd) : Bind(environment.SocketPath);

        while (!cancellationToken.IsCancellationRequested)
        {
            var connection = await listener.AcceptAsync(cancellationToken);

            // Runs inline up to its first wait (reading the request), then yields back to accept the next.
            _ = ServeAsync(connection, cancellationToken);
        }
    }

    /// <summary>Adopts the listening socket the runtime passed as <paramref name="fd"/>.</summary>
    /// <remarks>SECURITY: it must be close-on-exec, or every command would inherit it and could accept the
    /// server's connections in the agent's place.</remarks>
    private static Socket Inherited(int fd)
    {
        if (Interop.Libc.fcntl(fd, Interop.Libc.F_SETFD, Interop.Libc.FD_CLOEXEC) != 0)
        {
            throw new InvalidOperationException($"The inherited agent socket (fd {fd}) is not usable.");
        }

        return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
    }

    private static Socket Bind(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Delete(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listener.Listen(512);
        return listener;
    }

    private async Task ServeAsync(Socket connection, CancellationToken cancellationToken)
    {
        await using var frames = new FrameStream(new NetworkStream(connection, ownsSocket: true));
        IdleTrim.Touch();
        try
        {
            var first = await frames.ReadAsync(cancellationToken);
            if (first is null)
            {
                return;
            }

            if (first.Value.Kind != FrameKind.Request)
            {
                await SendErrorAsync(frames, AgentErrorCodes.InvalidArgument, "The first frame must be a request.", cancellationToken);
                return;
            }

            var request = AgentRequest.Read(first.Value);
            if (PathOf(request) is { } problem)
            {
                await SendErrorAsync(frames, AgentErrorCodes.InvalidArgument, problem, cancellationToken);
                return;
            }

            switch (request)
            {
                case ExecRequest exec:
                    await commands.RunAsync(exec, frames, cancellationToken);
                    break;
                case ReadFileRequest read:
                    await files.ReadAsync(read, frames, cancellationToken);
                    break;
                case WriteFileRequest write:
                    await files.WriteAsync(write, frames, cancellationToken);
                    break;
                case ListRequest list:
                    await frames.WriteJsonAsync(FrameKind.Response, await files.ListAsync(list), AgentJsonContext.Default.ListResponse, cancellationToken);
                    break;
                case StatRequest stat:
                    await frames.WriteJsonAsync(FrameKind.Response, await files.StatAsync(stat), AgentJsonContext.Default.FileEntry, cancellationToken);
                    break;
                case MakeDirRequest mkdir:
                    await frames.WriteJsonAsync(FrameKind.Response, await files.MakeDirAsync(mkdir), AgentJsonContext.Default.FileEntry, cancellationToken);
                    break;
                case RemoveRequest remove:
                    await files.RemoveAsync(remove);
                    await frames.WriteAsync(FrameKind.Response, "{}"u8.ToArray(), cancellationToken);
                    break;
                case RenameRequest rename:
                    await frames.WriteJsonAsync(FrameKind.Response, await files.RenameAsync(rename), AgentJsonContext.Default.FileEntry, cancellationToken);
                    break;
                case CreateContextRequest create:
                    await frames.WriteJsonAsync(FrameKind.Response, await contexts.CreateAsync(create, cancellationToken), AgentJsonContext.Default.ContextInfo, cancellationToken);
                    break;
                case ListContextsRequest:
                    await frames.WriteJsonAsync(FrameKind.Response, contexts.List(), AgentJsonContext.Default.ContextListResponse, cancellationToken);
                    break;
                case DeleteContextRequest delete:
                    await contexts.DeleteAsync(delete.Id);
                    await frames.WriteAsync(FrameKind.Response, "{}"u8.ToArray(), cancellationToken);
                    break;
                case RestartContextRequest restart:
                    await frames.WriteJsonAsync(FrameKind.Response, await contexts.RestartAsync(restart.Id, cancellationToken), AgentJsonContext.Default.ContextInfo, cancellationToken);
                    break;
                case InterruptContextRequest interrupt:
                    contexts.Interrupt(interrupt.Id);
                    await frames.WriteAsync(FrameKind.Response, "{}"u8.ToArray(), cancellationToken);
                    break;
                case RunCodeRequest run:
                    await contexts.RunAsync(run, frames, cancellationToken);
                    break;
                case WatchRequest watch:
                    await DirectoryWatch.RunAsync(watch, files.UserOf(watch.User), frames, cancellationToken);
                    break;
                case ConnectPortRequest port:
                    await PortTunnel.RunAsync(port, frames, cancellationToken);
                    break;
                case ConfigureRequest configure:
                    environment.Apply(configure.Env);
                    if (configure.Env.Count > 0)
                    {
                        await contexts.StopDefaultsAsync();
                    }

                    await frames.WriteAsync(FrameKind.Response, "{}"u8.ToArray(), cancellationToken);
                    break;
                case InfoRequest:
                    await frames.WriteJsonAsync(FrameKind.Response, new InfoResponse(Version, Environment.ProcessId, Uptime.ElapsedMilliseconds), AgentJsonContext.Default.InfoResponse, cancellationToken);
                    break;
                default:
                    await SendErrorAsync(frames, AgentErrorCodes.InvalidArgument, "Unknown request.", cancellationToken);
                    break;
            }
        }
        catch (AgentException ex)
        {
            await TrySendErrorAsync(frames, ex.Code, ex.Message, cancellationToken);
        }
        catch (InvalidDataException ex)
        {
            await TrySendErrorAsync(frames, AgentErrorCodes.InvalidArgument, ex.Message, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away.
        }
        catch (Exception ex)
        {
            await TrySendErrorAsync(frames, AgentErrorCodes.Internal, "The agent failed: " + ex.Message, cancellationToken);
        }
        finally
        {
            IdleTrim.Touch();
        }
    }

    /// <summary>Every path in a request must be absolute and free of <c>..</c> before anything touches it.</summary>
    private static string? PathOf(AgentRequest request) => request switch
    {
        ReadFileRequest r => SandboxPaths.Validate(r.Path),
        WriteFileRequest w => SandboxPaths.Validate(w.Path),
        ListRequest l => SandboxPaths.Validate(l.Path),
        StatRequest s => SandboxPaths.Validate(s.Path),
        MakeDirRequest m => SandboxPaths.Validate(m.Path),
        RemoveRequest d => SandboxPaths.Validate(d.Path),
        RenameRequest n => SandboxPaths.Validate(n.From) ?? SandboxPaths.Validate(n.To),
        CreateContextRequest c when c.Cwd is not null => SandboxPaths.Validate(c.Cwd),
        WatchRequest w => SandboxPaths.Validate(w.Path),
        _ => null,
    };

    public static ValueTask SendErrorAsync(FrameStream frames, string code, string message, CancellationToken cancellationToken)
        => frames.WriteJsonAsync(FrameKind.Error, new ErrorMessage(code, message), AgentJsonContext.Default.ErrorMessage, cancellationToken);

    private static async Task TrySendErrorAsync(FrameStream frames, string code, string message, CancellationToken cancellationToken)
    {
        try
        {
            await SendErrorAsync(frames, code, message, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}
