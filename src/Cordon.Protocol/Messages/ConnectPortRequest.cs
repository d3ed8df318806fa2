namespace Cordon.Protocol;

/// <summary>Opens a TCP connection to a port on the sandbox's own loopback and carries its bytes: answered by a
/// <see cref="FrameKind.Response"/> once connected, then <see cref="FrameKind.Data"/> frames both ways;
/// <see cref="FrameKind.DataEnd"/> says a side finished sending. This is how the server reaches a service in a
/// sandbox that has no network of its own.</summary>
public sealed record ConnectPortRequest : AgentRequest
{
    public required int Port { get; init; }
}
