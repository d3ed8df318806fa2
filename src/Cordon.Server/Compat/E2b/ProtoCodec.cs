using Google.Protobuf;
using Google.Protobuf.Reflection;
using Cordon.Server.Compat.E2b.Wire.Filesystem;
using Cordon.Server.Compat.E2b.Wire.Process;

namespace Cordon.Server.Compat.E2b;

/// <summary>Connect's binary protobuf codec for envd: a request arrives as protobuf and is turned into its proto3
/// JSON form, which the handlers speak; their answers go back the other way. One conversion at the edge keeps
/// every handler codec-agnostic. The message types are generated from Protos/*.proto.</summary>
internal static class ProtoCodec
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));

    /// <summary>Each method's request and response (for streams: each streamed message) types.</summary>
    private static readonly Dictionary<string, (MessageDescriptor Request, MessageDescriptor Response)> Methods = new(StringComparer.Ordinal)
    {
        ["/process.Process/Start"] = (StartRequest.Descriptor, StartResponse.Descriptor),
        ["/process.Process/Connect"] = (ConnectRequest.Descriptor, ConnectResponse.Descriptor),
        ["/process.Process/List"] = (ListRequest.Descriptor, ListResponse.Descriptor),
        ["/process.Process/SendInput"] = (SendInputRequest.Descriptor, SendInputResponse.Descriptor),
        ["/process.Process/SendSignal"] = (SendSignalRequest.Descriptor, SendSignalResponse.Descriptor),
        ["/process.Process/CloseStdin"] = (CloseStdinRequest.Descriptor, CloseStdinResponse.Descriptor),
        ["/process.Process/Update"] = (UpdateRequest.Descriptor, UpdateResponse.Descriptor),
        ["/process.Process/StreamInput"] = (StreamInputRequest.Descriptor, StreamInputResponse.Descriptor),
        ["/filesystem.Filesystem/Stat"] = (StatRequest.Descriptor, StatResponse.Descriptor),
        ["/filesystem.Filesystem/MakeDir"] = (MakeDirRequest.Descriptor, MakeDirResponse.Descriptor),
        ["/filesystem.Filesystem/Move"] = (MoveRequest.Descriptor, MoveResponse.Descriptor),
        ["/filesystem.Filesystem/ListDir"] = (ListDirRequest.Descriptor, ListDirResponse.Descriptor),
        ["/filesystem.Filesystem/Remove"] = (RemoveRequest.Descriptor, RemoveResponse.Descriptor),
        ["/filesystem.Filesystem/WatchDir"] = (WatchDirRequest.Descriptor, WatchDirResponse.Descriptor),
        ["/filesystem.Filesystem/CreateWatcher"] = (CreateWatcherRequest.Descriptor, CreateWatcherResponse.Descriptor),
        ["/filesystem.Filesystem/GetWatcherEvents"] = (GetWatcherEventsRequest.Descriptor, GetWatcherEventsResponse.Descriptor),
        ["/filesystem.Filesystem/RemoveWatcher"] = (RemoveWatcherRequest.Descriptor, RemoveWatcherResponse.Descriptor),
    };

    /// <summary>A binary request as proto3 JSON.</summary>
    /// <exception cref="ConnectException">unimplemented for an unknown method; invalid_argument for bad bytes.</exception>
    public static string RequestToJson(string path, byte[] bytes)
    {
        var (request, _) = Lookup(path);
        try
        {
            return JsonFormatter.Default.Format(request.Parser.ParseFrom(bytes));
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new ConnectException("invalid_argument", "The request is not a valid protobuf message: " + ex.Message);
        }
    }

    /// <summary>A handler's proto3 JSON answer as binary protobuf.</summary>
    public static byte[] ResponseFromJson(string path, string json) => Parser.Parse(json, Lookup(path).Response).ToByteArray();

    private static (MessageDescriptor Request, MessageDescriptor Response) Lookup(string path)
        => Methods.TryGetValue(path, out var method) ? method : throw new ConnectException("unimplemented", $"{path} is not an envd method.");
}
