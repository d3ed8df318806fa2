using System.Text.Json.Serialization;

namespace Cordon.Agent.Code;

/// <summary>A request to the Python or Node.js driver: <c>{"op": "run", "code": …}</c>.</summary>
internal sealed record DriverRequest(string Op, string Code);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(DriverRequest))]
internal sealed partial class DriverJsonContext : JsonSerializerContext;
