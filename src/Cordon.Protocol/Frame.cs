namespace Cordon.Protocol;

/// <summary>One frame read from the agent protocol. <see cref="Payload"/> is only valid until the next read.</summary>
public readonly record struct Frame(FrameKind Kind, ReadOnlyMemory<byte> Payload);
