using System.Text.Json.Serialization;

namespace Cordon.Agent.Code;

/// <summary>A request to the Python or Node.js driver: <c>{"op": "run", "code": …, "env": {…}}</c>.</summary>
internal sealed record DriverRequest(string Op, string Code, IReadOnlyDictionary<string, string>? Env);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DriverRequest))]
internal sealed partial class DriverJsonContext : JsonSerializerContext;
