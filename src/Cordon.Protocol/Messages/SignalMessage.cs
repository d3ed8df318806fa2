namespace Cordon.Protocol;

/// <summary>A signal number to deliver to a running command's process group.</summary>
public sealed record SignalMessage(int Signal);
