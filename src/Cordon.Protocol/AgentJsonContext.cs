using System.Text.Json.Serialization;

namespace Cordon.Protocol;

/// <summary>Source-generated JSON for every agent protocol message (trimming- and AOT-safe).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AgentRequest))]
[JsonSerializable(typeof(InfoResponse))]
[JsonSerializable(typeof(StartedMessage))]
[JsonSerializable(typeof(ExitMessage))]
[JsonSerializable(typeof(SignalMessage))]
[JsonSerializable(typeof(ErrorMessage))]
[JsonSerializable(typeof(FileEntry))]
[JsonSerializable(typeof(ListResponse))]
[JsonSerializable(typeof(ContextInfo))]
[JsonSerializable(typeof(ContextListResponse))]
[JsonSerializable(typeof(CodeEvent))]
[JsonSerializable(typeof(WatchEvent))]
[JsonSerializable(typeof(TerminalSize))]
public sealed partial class AgentJsonContext : JsonSerializerContext;
