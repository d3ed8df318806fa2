namespace Cordon.Protocol;

/// <summary>What the agent reports about itself.</summary>
public sealed record InfoResponse(string Version, int Pid, long UptimeMs);
