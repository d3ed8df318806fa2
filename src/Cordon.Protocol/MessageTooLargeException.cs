namespace Cordon.Protocol;

/// <summary>A message larger than <see cref="FrameStream.MaxMessage"/> was refused (reading) or could not be sent
/// (writing); the request fails with it, and its connection is not used again.</summary>
public sealed class MessageTooLargeException(string message) : IOException(message);
