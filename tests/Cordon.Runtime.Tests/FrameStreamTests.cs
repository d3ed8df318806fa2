using System.Buffers.Binary;
using Cordon.Protocol;
using Xunit;

namespace Cordon.Runtime.Tests;

public sealed class FrameStreamTests
{
    [Fact]
    public async Task WriteThenRead_JsonAndData_RoundTrip()
    {
        var buffer = new MemoryStream();
        var writer = new FrameStream(buffer);
        await writer.WriteJsonAsync(FrameKind.Request, new ExecRequest { Argv = ["echo", "hi"], TimeoutMs = 5 }, AgentJsonContext.Default.AgentRequest, default);
        await writer.WriteAsync(FrameKind.Data, new byte[] { 1, 2, 3 }, default);
        await writer.WriteAsync(FrameKind.DataEnd, ReadOnlyMemory<byte>.Empty, default);

        buffer.Position = 0;
        var reader = new FrameStream(buffer);
        var request = FrameStream.ParseJson((await reader.ReadAsync(default))!.Value, AgentJsonContext.Default.AgentRequest);
        var exec = Assert.IsType<ExecRequest>(request);
        Assert.Equal(["echo", "hi"], exec.Argv);
        Assert.Equal(5, exec.TimeoutMs);

        var data = (await reader.ReadAsync(default))!.Value;
        Assert.Equal(FrameKind.Data, data.Kind);
        Assert.Equal(new byte[] { 1, 2, 3 }, data.Payload.ToArray());
        Assert.Equal(FrameKind.DataEnd, (await reader.ReadAsync(default))!.Value.Kind);
        Assert.Null(await reader.ReadAsync(default));
    }

    [Fact]
    public async Task Read_OversizedLength_Throws()
    {
        var bytes = new byte[5];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, FrameStream.MaxPayload + 2);
        var reader = new FrameStream(new MemoryStream(bytes));
        await Assert.ThrowsAsync<InvalidDataException>(async () => await reader.ReadAsync(default));
    }

    [Fact]
    public async Task Read_TruncatedFrame_Throws()
    {
        var bytes = new byte[7];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, 10);
        bytes[4] = (byte)FrameKind.Data;
        var reader = new FrameStream(new MemoryStream(bytes));
        await Assert.ThrowsAsync<EndOfStreamException>(async () => await reader.ReadAsync(default));
    }

    [Fact]
    public void ParseJson_UnknownOperation_ThrowsInvalidData()
    {
        var frame = new Frame(FrameKind.Request, "{\"op\":\"format-disk\"}"u8.ToArray());
        Assert.Throws<InvalidDataException>(() => FrameStream.ParseJson(frame, AgentJsonContext.Default.AgentRequest));
    }
}
