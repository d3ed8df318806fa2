using System.Text;
using Cordon.Server.Network;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The egress proxy's request rewriting, as pure logic over streams: what reaches the server for what the
/// sandbox sent (the end-to-end behaviour is SecretTests').</summary>
public sealed class HttpRewriterTests
{
    private const string Host = "api.example.com";
    private const string Placeholder = "cordon-secret-k-abc";

    private static readonly Interception Fill = new([("X-Set", "set-by-rule")], [(Placeholder, "REAL")]);

    private static async Task<(string Server, string Client, string? Refusal)> ForwardAsync(string sent, Interception? interception = null)
    {
        var client = new DuplexStream(Encoding.Latin1.GetBytes(sent));
        var server = new MemoryStream();
        var refusal = await new HttpRewriter(Host, interception ?? Fill).ForwardAsync(client, server, CancellationToken.None);
        return (Encoding.Latin1.GetString(server.ToArray()), Encoding.Latin1.GetString(client.Written.ToArray()), refusal);
    }

    [Fact]
    public async Task KeepAlive_EachRequestIsRewritten_BodiesPassUnchanged()
    {
        var (server, _, refusal) = await ForwardAsync(
            $"POST /a HTTP/1.1\r\nHost: {Host}\r\nAuthorization: Bearer {Placeholder}\r\nX-Set: forged\r\nContent-Length: 17\r\n\r\nbody {Placeholder}" +
            $"GET /b HTTP/1.1\r\nHost: {Host}:443\r\nX-Other: {Placeholder}\r\n\r\n");

        Assert.Null(refusal);
        Assert.Equal(
            $"POST /a HTTP/1.1\r\nHost: {Host}\r\nAuthorization: Bearer REAL\r\nContent-Length: 17\r\nX-Set: set-by-rule\r\n\r\nbody {Placeholder}" +
            $"GET /b HTTP/1.1\r\nHost: {Host}:443\r\nX-Other: REAL\r\nX-Set: set-by-rule\r\n\r\n", server);
    }

    [Fact]
    public async Task Chunked_IsFollowedToItsEnd_ThenTheNextRequestIsRead()
    {
        var body = "5\r\nhello\r\n3;ext=1\r\n, w\r\n0\r\nTrailer: t\r\n\r\n";
        var (server, _, _) = await ForwardAsync(
            $"PUT /c HTTP/1.1\r\nHost: {Host}\r\nTransfer-Encoding: chunked\r\n\r\n{body}GET /d HTTP/1.1\r\nHost: {Host}\r\nA: {Placeholder}\r\n\r\n");

        Assert.Contains(body + "GET /d HTTP/1.1", server, StringComparison.Ordinal);
        Assert.EndsWith("A: REAL\r\nX-Set: set-by-rule\r\n\r\n", server, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: other.example.com\r\nA: " + Placeholder + "\r\n\r\n", "421 Misdirected Request")]
    [InlineData("GET / HTTP/1.1\r\nA: b\r\n\r\n", "400 Bad Request")]
    [InlineData("POST / HTTP/1.1\r\nHost: " + Host + "\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "400 Bad Request")]
    [InlineData("POST / HTTP/1.1\r\nHost: " + Host + "\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "400 Bad Request")]
    [InlineData("GET / HTTP/1.1\r\nHost: " + Host + "\r\n folded\r\n\r\n", "400 Bad Request")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "400 Bad Request")]
    public async Task Refused_BeforeAnythingReachesTheServer(string sent, string status)
    {
        var (server, client, refusal) = await ForwardAsync(sent);

        Assert.Equal("", server);
        Assert.StartsWith("HTTP/1.1 " + status, client, StringComparison.Ordinal);
        Assert.NotNull(refusal);
    }

    [Fact]
    public async Task HugeHead_Gets431_NotAnUnboundedBuffer()
    {
        var (server, client, _) = await ForwardAsync($"GET / HTTP/1.1\r\nHost: {Host}\r\nX: {new string('a', HttpRewriter.MaxHeadBytes)}\r\n\r\n");

        Assert.Equal("", server);
        Assert.StartsWith("HTTP/1.1 431", client, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RuleRefusal_AnswersEveryRequestWithA403ThatSaysWhy()
    {
        var (server, client, refusal) = await ForwardAsync($"GET / HTTP/1.1\r\nHost: {Host}\r\n\r\n", new Interception([], [], "secret 'k' is gone"));

        Assert.Equal("", server);
        Assert.StartsWith("HTTP/1.1 403", client, StringComparison.Ordinal);
        Assert.Contains("secret 'k' is gone", client, StringComparison.Ordinal);
        Assert.Equal("secret 'k' is gone", refusal);
    }

    [Fact]
    public async Task Upgrade_PassesTheRestUnchanged()
    {
        var (server, _, _) = await ForwardAsync($"GET /ws HTTP/1.1\r\nHost: {Host}\r\nUpgrade: websocket\r\nA: {Placeholder}\r\n\r\nraw {Placeholder} bytes");

        Assert.EndsWith($"A: REAL\r\nX-Set: set-by-rule\r\n\r\nraw {Placeholder} bytes", server, StringComparison.Ordinal);
    }

    /// <summary>Reads what the sandbox sent, a few bytes at a time (heads split across reads); keeps what is written back.</summary>
    private sealed class DuplexStream(byte[] input) : Stream
    {
        private int _read;

        public MemoryStream Written { get; } = new();

        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => input.Length;

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(count, 7), input.Length - _read);
            Array.Copy(input, _read, buffer, offset, n);
            _read += n;
            return n;
        }

        public override void Write(byte[] buffer, int offset, int count) => Written.Write(buffer, offset, count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
