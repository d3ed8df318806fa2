using System.Text.Json.Serialization;

namespace Cordon.Protocol;

/// <summary>Source-generated JSON for every agent protocol message (trimming- and AOT-safe).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AgentRequest))]
[JsonSerializable(typeof(ExecRequest))]
[JsonSerializable(typeof(ReadFileRequest))]
[JsonSerializable(typeof(WriteFileRequest))]
[JsonSerializable(typeof(ListRequest))]
[JsonSerializable(typeof(StatRequest))]
[JsonSerializable(typeof(MakeDirRequest))]
[JsonSerializable(typeof(RemoveRequest))]
[JsonSerializable(typeof(RenameRequest))]
[JsonSerializable(typeof(InfoRequest))]
[JsonSerializable(typeof(ConfigureRequest))]
[JsonSerializable(typeof(CreateContextRequest))]
[JsonSerializable(typeof(ListContextsRequest))]
[JsonSerializable(typeof(DeleteContextRequest))]
[JsonSerializable(typeof(RestartContextRequest))]
[JsonSerializable(typeof(InterruptContextRequest))]
[JsonSerializable(typeof(RunCodeRequest))]
[JsonSerializable(typeof(ConnectPortRequest))]
[JsonSerializable(typeof(WatchRequest))]
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
[JsonSerializable(typeof(string))]
public sealed partial class AgentJsonContext : JsonSerializerContext;
