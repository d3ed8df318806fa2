namespace Cordon.Protocol.Api;

/// <summary>A warm pool: its image, how many sandboxes it keeps started, how many are ready now, and how many creates
/// took one (claims) or found it empty (misses) since the server started.</summary>
public sealed record WarmPool(string Image, int Size, int Ready, long Claims, long Misses);

/// <summary>How many sandboxes of an image to keep started (0 ends the pool).</summary>
public sealed record SetPoolRequest(int Size);
