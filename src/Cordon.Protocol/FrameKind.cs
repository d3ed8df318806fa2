namespace Cordon.Protocol;

/// <summary>The kind of one frame of the agent protocol.</summary>
/// <remarks>
/// Every frame is <c>[u32 little-endian length][u8 kind][payload]</c>, where length counts the kind
/// byte and the payload. JSON frames carry UTF-8 JSON of the types in <see cref="AgentJsonContext"/>;
/// data frames carry raw bytes. One connection carries one request and its answer, so the agent
/// serves many at once and a dead client never blocks another.
/// </remarks>
public enum FrameKind : byte
{
    /// <summary>Client → agent: the request (JSON <see cref="AgentRequest"/>), always first.</summary>
    Request = 1,

    /// <summary>Agent → client: a JSON answer to the request.</summary>
    Response = 2,

    /// <summary>Agent → client: bytes the command wrote to standard output.</summary>
    Stdout = 3,

    /// <summary>Agent → client: bytes the command wrote to standard error.</summary>
    Stderr = 4,

    /// <summary>Client → agent: bytes for the command's standard input.</summary>
    Stdin = 5,

    /// <summary>Client → agent: close the command's standard input.</summary>
    StdinClose = 6,

    /// <summary>Client → agent: deliver a signal (JSON <see cref="SignalMessage"/>) to the command.</summary>
    Signal = 7,

    /// <summary>Either way: a chunk of file content.</summary>
    Data = 8,

    /// <summary>Either way: the file content is complete.</summary>
    DataEnd = 9,

    /// <summary>Agent → client: the request failed (JSON <see cref="ErrorMessage"/>); the last frame.</summary>
    Error = 10,

    /// <summary>Agent → client: the command started (JSON <see cref="StartedMessage"/>).</summary>
    Started = 11,

    /// <summary>Agent → client: the command ended (JSON <see cref="ExitMessage"/>); the last frame.</summary>
    Exit = 12,

    /// <summary>Agent → client: one event of a code run (JSON <see cref="CodeEvent"/>); an <c>end</c> event is the last frame.</summary>
    CodeEvent = 13,

    /// <summary>Agent → client: a change in a watched directory (JSON <see cref="WatchEvent"/>).</summary>
    WatchEvent = 14,

    /// <summary>Client → agent: resize the command's terminal (JSON <see cref="TerminalSize"/>).</summary>
    Resize = 15,

    /// <summary>Either way: the first parts of a JSON message larger than <see cref="FrameStream.MaxPayload"/>; the
    /// next frame continues it, and the frame that ends it carries the message's own kind. A reader reassembles
    /// the parts, up to <see cref="FrameStream.MaxMessage"/>.</summary>
    Continued = 16,
}
