using System.Text.Json.Serialization;

namespace Cordon.Protocol;

/// <summary>The first frame of every agent connection: what the client wants done.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "op", UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization)]
[JsonDerivedType(typeof(ExecRequest), "exec")]
[JsonDerivedType(typeof(ReadFileRequest), "read")]
[JsonDerivedType(typeof(WriteFileRequest), "write")]
[JsonDerivedType(typeof(ListRequest), "list")]
[JsonDerivedType(typeof(StatRequest), "stat")]
[JsonDerivedType(typeof(MakeDirRequest), "mkdir")]
[JsonDerivedType(typeof(RemoveRequest), "remove")]
[JsonDerivedType(typeof(RenameRequest), "rename")]
[JsonDerivedType(typeof(InfoRequest), "info")]
[JsonDerivedType(typeof(CreateContextRequest), "context.create")]
[JsonDerivedType(typeof(ListContextsRequest), "context.list")]
[JsonDerivedType(typeof(DeleteContextRequest), "context.delete")]
[JsonDerivedType(typeof(RestartContextRequest), "context.restart")]
[JsonDerivedType(typeof(InterruptContextRequest), "context.interrupt")]
[JsonDerivedType(typeof(RunCodeRequest), "code.run")]
[JsonDerivedType(typeof(ConnectPortRequest), "port.connect")]
[JsonDerivedType(typeof(WatchRequest), "watch")]
public abstract record AgentRequest;
