namespace Cordon.Runtime;

/// <summary>A volume mounted into a sandbox at <paramref name="Path"/> (absolute, checked by the service).</summary>
public sealed record VolumeMount(string VolumeId, string Path, bool ReadOnly);
