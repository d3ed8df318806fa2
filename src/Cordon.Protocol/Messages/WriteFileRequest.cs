namespace Cordon.Protocol;

/// <summary>Writes a file from the data frames that follow, ending with <see cref="FrameKind.DataEnd"/>.</summary>
/// <remarks>The content goes to a temporary file beside the target that replaces it only once complete, so
/// an interrupted upload never leaves a half-written file in place. Answered by a <see cref="FileEntry"/>.</remarks>
public sealed record WriteFileRequest : AgentRequest
{
    public required string Path { get; init; }

    /// <summary>Permission bits for a new file; 0644 when null. An existing file keeps its mode.</summary>
    public int? Mode { get; init; }

    /// <summary>Who writes (name or uid): the write is done with that user's rights, and a new file is theirs. The
    /// sandbox's default user when null.</summary>
    public string? User { get; init; }

    /// <summary>Create missing parent directories.</summary>
    public bool CreateParents { get; init; } = true;
}
