using System.Text.Json.Serialization;

namespace Cordon.Runtime.Images;

/// <summary>Source-generated JSON for the registry auth file handed to skopeo.</summary>
[JsonSerializable(typeof(Dictionary<string, Dictionary<string, Dictionary<string, string>>>))]
internal sealed partial class RegistryJsonContext : JsonSerializerContext;
