using System.Net;
using System.Net.Sockets;
using Cordon.Protocol;

namespace Cordon.Agent;

/// <summary>Carries one TCP connection to a port on the sandbox's loopback over the agent connection
/// (<see cref="ConnectPortRequest"/>): the sandbox needs no network for the server to reach its services.</summary>
internal static class PortTunnel
{
    public static async Task RunAsync(ConnectPortRequest request, FrameStream frames, CancellationToken cancellationToken)
    {
        if (request.Port is < 1 or > 65535)
        {
            throw new AgentException(AgentErrorCodes.InvalidArgument, $"Port {request.Port} is not a TCP port (1–65535).");
        }

        using var socket = await ConnectAsync(request.Port, cancellationToken)
            ?? throw new AgentException(AgentErrorCodes.NotFound, $"Nothing is listening on port {request.Port} in the sandbox (127.0.0.1 or ::1): start the server first.");
        socket.NoDelay = true;
        await frames.WriteAsync(FrameKind.Response, "{}"u8.ToArray(), cancellationToken);

        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var up = UpAsync(frames, socket, done.Token);
        var down = DownAsync(socket, frames, done.Token);

        // The client closing its side ends the tunnel; the service closing its side is passed on, and the
        // client ends the tunnel when it has read it.
        await up;
        await done.CancelAsync();
        socket.Close();
        try
        {
            await down;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
        }
    }

    private static async Task<Socket?> ConnectAsync(int port, CancellationToken cancellationToken)
    {
        foreach (var address in (IPAddress[])[IPAddress.Loopback, IPAddress.IPv6Loopback])
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken);
                return socket;
            }
            catch (SocketException)
            {
                socket.Dispose();
            }
        }

        return null;
    }

    /// <summary>Client to service, until the client closes the connection.</summary>
    private static async Task UpAsync(FrameStream frames, Socket socket, CancellationToken cancellationToken)
    {
        try
        {
            while (await frames.ReadAsync(cancellationToken) is { } frame)
            {
                switch (frame.Kind)
                {
                    case FrameKind.Data:
                        await socket.SendAsync(frame.Payload, SocketFlags.None, cancellationToken);
                        break;
                    case FrameKind.DataEnd:
                        socket.Shutdown(SocketShutdown.Send);
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or InvalidDataException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Service to client, until the service closes its side.</summary>
    private static async Task DownAsync(Socket socket, FrameStream frames, CancellationToken cancellationToken)
    {
        var buffer = new byte[FrameStream.ChunkSize];
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (n == 0)
            {
                await frames.WriteAsync(FrameKind.DataEnd, ReadOnlyMemory<byte>.Empty, cancellationToken);
                return;
            }

            await frames.WriteAsync(FrameKind.Data, buffer.AsMemory(0, n), cancellationToken);
        }
    }
}
