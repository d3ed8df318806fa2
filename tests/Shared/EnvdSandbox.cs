using System.Text;
using System.Text.Json;

namespace Cordon.Testing;

/// <summary>A sandbox made through E2B's control plane, and raw envd calls into it (what the SDKs do underneath).</summary>
public sealed class EnvdSandbox : IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly CancellationToken _token;

    private EnvdSandbox(HttpClient http, string id, string accessToken, CancellationToken token)
    {
        _http = http;
        Id = id;
        AccessToken = accessToken;
        _token = token;
    }

    public string Id { get; }

    public string AccessToken { get; }

    /// <summary>The client it was made with (an API key, no sandbox headers).</summary>
    public HttpClient Http => _http;

    /// <param name="http">A client that sends an API key.</param>
    /// <param name="template">An E2B template name: <c>base</c> (the default image) or an image name.</param>
    public static async Task<EnvdSandbox> CreateAsync(HttpClient http, CancellationToken token, string template = "base")
    {
        using var created = await http.PostAsync("/sandboxes", new StringContent($"{{\"templateID\":\"{template}\",\"timeout\":600}}", Encoding.UTF8, "application/json"), token);
        created.EnsureSuccessStatusCode();
        var sandbox = JsonDocument.Parse(await created.Content.ReadAsStringAsync(token)).RootElement;
        return new EnvdSandbox(http, sandbox.GetProperty("sandboxID").GetString()!, sandbox.GetProperty("envdAccessToken").GetString()!, token);
    }

    /// <summary>POSTs to an envd path of this sandbox, routed by E2B's headers, with its token unless another is given.</summary>
    /// <param name="streaming">Return as soon as the headers arrive (the body is read as it comes).</param>
    /// <param name="port">The logical port: envd (49983) or the code interpreter (49999).</param>
    public Task<HttpResponseMessage> SendAsync(string path, byte[] body, string contentType, string? accessToken = null, bool streaming = false, int port = 49983)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        request.Headers.Add("E2b-Sandbox-Id", Id);
        request.Headers.Add("E2b-Sandbox-Port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if ((accessToken ?? AccessToken) is { Length: > 0 } value)
        {
            request.Headers.Add("X-Access-Token", value);
        }

        return _http.SendAsync(request, streaming ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead, _token);
    }

    /// <summary>Connect envelopes (flags 0, big-endian length) around each message.</summary>
    public static byte[] Envelope(params byte[][] messages) => [.. messages.SelectMany(message =>
    {
        var frame = new byte[5 + message.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), message.Length);
        message.CopyTo(frame, 5);
        return frame;
    })];

    public async ValueTask DisposeAsync()
    {
        using var _ = await _http.DeleteAsync($"/sandboxes/{Id}", CancellationToken.None);
    }
}
