using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Cordon.Protocol;

/// <summary>The first frame of every agent connection: what the client wants done. Its <c>op</c> names the
/// request (see <see cref="Kinds"/>): write requests with <see cref="TypeInfo"/>, read them with <see cref="Read"/>.</summary>
public abstract record AgentRequest
{
    /// <summary>Every request and its <c>op</c>.</summary>
    /// <remarks>A table in code rather than <c>[JsonDerivedType]</c> attributes, so that reading a request builds the
    /// JSON metadata of that request's type only. System.Text.Json reads every type's attributes through
    /// reflection when it first builds its metadata, and a polymorphic base type builds all its derived types at
    /// once: in a fresh NativeAOT agent, ~0.7 ms of every sandbox's first command.</remarks>
    public static IReadOnlyList<(Type Type, string Op)> Kinds { get; } =
    [
        (typeof(ExecRequest), "exec"),
        (typeof(ReadFileRequest), "read"),
        (typeof(WriteFileRequest), "write"),
        (typeof(ListRequest), "list"),
        (typeof(StatRequest), "stat"),
        (typeof(MakeDirRequest), "mkdir"),
        (typeof(RemoveRequest), "remove"),
        (typeof(RenameRequest), "rename"),
        (typeof(InfoRequest), "info"),
        (typeof(CreateContextRequest), "context.create"),
        (typeof(ListContextsRequest), "context.list"),
        (typeof(DeleteContextRequest), "context.delete"),
        (typeof(RestartContextRequest), "context.restart"),
        (typeof(InterruptContextRequest), "context.interrupt"),
        (typeof(RunCodeRequest), "code.run"),
        (typeof(ConnectPortRequest), "port.connect"),
        (typeof(WatchRequest), "watch"),
        (typeof(ConfigureRequest), "configure"),
    ];

    private static readonly Dictionary<string, Type> TypesByOp = Kinds.ToDictionary(k => k.Op, k => k.Type, StringComparer.Ordinal);

    private static JsonTypeInfo<AgentRequest>? _typeInfo;

    /// <summary>Writes any request with its <c>op</c> first. (Built on first use: the agent, which only reads
    /// requests, never builds it.)</summary>
    public static JsonTypeInfo<AgentRequest> TypeInfo => _typeInfo ??= CreateTypeInfo();

    private static JsonTypeInfo<AgentRequest> CreateTypeInfo() => (JsonTypeInfo<AgentRequest>)new JsonSerializerOptions(AgentJsonContext.Default.Options)
    {
        TypeInfoResolver = AgentJsonContext.Default.WithAddedModifier(static info =>
        {
            if (info.Type != typeof(AgentRequest))
            {
                return;
            }

            info.PolymorphismOptions = new JsonPolymorphismOptions
            {
                TypeDiscriminatorPropertyName = "op",
                UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization,
            };
            foreach (var (type, op) in Kinds)
            {
                info.PolymorphismOptions.DerivedTypes.Add(new JsonDerivedType(type, op));
            }
        }),
    }.GetTypeInfo(typeof(AgentRequest));

    /// <summary>Reads a request frame as the type its <c>op</c> names.</summary>
    /// <exception cref="InvalidDataException">The payload is not JSON, has no <c>op</c>, or names no request.</exception>
    public static AgentRequest Read(Frame frame)
    {
        var op = FindOp(frame.Payload.Span);
        if (op is null || !TypesByOp.TryGetValue(op, out var type))
        {
            throw new InvalidDataException(op is null
                ? "The request has no \"op\"."
                : $"The request's op '{op}' is unknown to this agent (a newer server?).");
        }

        try
        {
            return (AgentRequest?)JsonSerializer.Deserialize(frame.Payload.Span, AgentJsonContext.Default.GetTypeInfo(type)!)
                ?? throw new InvalidDataException("The request is JSON null.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"The {op} request holds malformed JSON: {ex.Message}", ex);
        }
    }

    /// <summary>The top-level <c>op</c> string of a JSON object, or null.</summary>
    private static string? FindOp(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isOp = reader.ValueTextEquals("op"u8);
                reader.Read();
                if (isOp)
                {
                    return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }

                reader.Skip();
            }

            return null;
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"The request is not JSON: {ex.Message}", ex);
        }
    }
}
