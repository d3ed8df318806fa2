using System.Text.Json;
using System.Text.Json.Serialization;

namespace Cordon.Protocol.Api;

/// <summary>Source-generated JSON for the REST contract, used by the server and the C# SDK alike.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(SandboxInfo))]
[JsonSerializable(typeof(NetworkPolicy))]
[JsonSerializable(typeof(SecretInfo))]
[JsonSerializable(typeof(List<SecretInfo>))]
[JsonSerializable(typeof(CreateSecretRequest))]
[JsonSerializable(typeof(UpdateSecretRequest))]
[JsonSerializable(typeof(List<SandboxInfo>))]
[JsonSerializable(typeof(CreateSandboxRequest))]
[JsonSerializable(typeof(ExecRequestBody))]
[JsonSerializable(typeof(ExecResult))]
[JsonSerializable(typeof(ExecStreamEvent))]
[JsonSerializable(typeof(FileListing))]
[JsonSerializable(typeof(FileEntry))]
[JsonSerializable(typeof(RenameRequestBody))]
[JsonSerializable(typeof(SetTimeoutRequest))]
[JsonSerializable(typeof(List<SandboxEvent>))]
[JsonSerializable(typeof(SandboxMetrics))]
[JsonSerializable(typeof(ImageInfo))]
[JsonSerializable(typeof(List<ImageInfo>))]
[JsonSerializable(typeof(HealthReport))]
[JsonSerializable(typeof(RunCodeRequestBody))]
[JsonSerializable(typeof(CreateContextRequestBody))]
[JsonSerializable(typeof(CodeRunResult))]
[JsonSerializable(typeof(CodeEvent))]
[JsonSerializable(typeof(ContextInfo))]
[JsonSerializable(typeof(ContextList))]
public sealed partial class ApiJsonContext : JsonSerializerContext;
