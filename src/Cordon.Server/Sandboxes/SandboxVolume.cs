namespace Cordon.Server.Sandboxes;

/// <summary>A volume mounted into a sandbox: the volume (its id once resolved; an id or a name in a request), where,
/// and whether read-only.</summary>
public sealed record SandboxVolume(string Volume, string Path, bool ReadOnly = false);
