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
        await writer.WriteJsonAsync(FrameKind.Request, new ExecRequest { Argv = ["echo", "hi"], TimeoutMs = 5 }, AgentRequest.TypeInfo, default);
        await writer.WriteAsync(FrameKind.Data, new byte[] { 1, 2, 3 }, default);
        await writer.WriteAsync(FrameKind.DataEnd, ReadOnlyMemory<byte>.Empty, default);

        buffer.Position = 0;
        var reader = new FrameStream(buffer);
        var request = AgentRequest.Read((await reader.ReadAsync(default))!.Value);
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

    [Theory]
    [InlineData("{\"op\":\"format-disk\"}")]
    [InlineData("{\"argv\":[\"true\"]}")]
    [InlineData("{\"op\":7}")]
    [InlineData("[\"exec\"]")]
    [InlineData("{\"op\":\"exec\",\"argv\":")]
    [InlineData("not json")]
    public void Read_UnknownMissingOrMalformed_ThrowsInvalidData(string json)
        => Assert.Throws<InvalidDataException>(() => AgentRequest.Read(new Frame(FrameKind.Request, System.Text.Encoding.UTF8.GetBytes(json))));

    [Fact]
    public void Kinds_ListEveryRequestTypeOnce_WithItsOwnOp()
    {
        var concrete = typeof(AgentRequest).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(AgentRequest)) && !t.IsAbstract)
            .OrderBy(t => t.Name).ToList();

        Assert.Equal(concrete, AgentRequest.Kinds.Select(k => k.Type).OrderBy(t => t.Name));
        Assert.Equal(AgentRequest.Kinds.Count, AgentRequest.Kinds.Select(k => k.Op).Distinct().Count());
    }

    [Fact]
    public void EveryKind_IsWrittenWithItsOpFirst_AndHasMetadataToBeRead()
    {
        foreach (var (type, op) in AgentRequest.Kinds)
        {
            var request = (AgentRequest)System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(type);
            var json = System.Text.Encoding.UTF8.GetString(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(request, AgentRequest.TypeInfo));

            Assert.StartsWith($"{{\"op\":\"{op}\"", json, StringComparison.Ordinal);
            Assert.NotNull(AgentJsonContext.Default.GetTypeInfo(type));
        }
    }

    [Fact]
    public async Task WriteJson_LargerThanOneFrame_ArrivesWhole()
    {
        var buffer = new MemoryStream();
        var writer = new FrameStream(buffer);
        var text = new string('x', 3 * FrameStream.MaxPayload + 123); // a figure's base64, say
        await writer.WriteJsonAsync(FrameKind.CodeEvent, new CodeEvent { Type = CodeEventTypes.Stdout, Text = text }, AgentJsonContext.Default.CodeEvent, default);
        await writer.WriteAsync(FrameKind.DataEnd, ReadOnlyMemory<byte>.Empty, default);

        buffer.Position = 0;
        var reader = new FrameStream(buffer);
        var frame = (await reader.ReadAsync(default))!.Value;
        Assert.Equal(FrameKind.CodeEvent, frame.Kind);
        Assert.Equal(text, FrameStream.ParseJson(frame, AgentJsonContext.Default.CodeEvent).Text);
        Assert.Equal(FrameKind.DataEnd, (await reader.ReadAsync(default))!.Value.Kind);
    }

    [Fact]
    public async Task Read_MessageOfContinuedFramesPastTheBound_IsRefusedBeforeItIsKept()
    {
        // A peer that never ends its message: frames of the largest size, marked as continued, past MaxMessage.
        var frames = new MemoryStream();
        var header = new byte[5];
        BinaryPrimitives.WriteUInt32LittleEndian(header, FrameStream.MaxPayload + 1);
        header[4] = (byte)FrameKind.Continued;
        var payload = new byte[FrameStream.MaxPayload];
        for (var i = 0; i <= FrameStream.MaxMessage / FrameStream.MaxPayload; i++)
        {
            frames.Write(header);
            frames.Write(payload);
        }

        frames.Position = 0;
        var reader = new FrameStream(frames);
        await Assert.ThrowsAsync<MessageTooLargeException>(async () => await reader.ReadAsync(default));
    }

    [Fact]
    public async Task WriteJson_LargerThanTheBound_SendsNothing()
    {
        var buffer = new MemoryStream();
        var writer = new FrameStream(buffer);

        await Assert.ThrowsAsync<MessageTooLargeException>(async () =>
            await writer.WriteJsonAsync(FrameKind.CodeEvent, new CodeEvent { Type = CodeEventTypes.Stdout, Text = new string('x', FrameStream.MaxMessage) }, AgentJsonContext.Default.CodeEvent, default));

        Assert.Equal(0, buffer.Length);
    }
}
