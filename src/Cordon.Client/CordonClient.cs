using System.Net.Http.Headers;
using System.Text;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Cordon.Protocol;
using Cordon.Protocol.Api;

namespace Cordon.Client;

/// <summary>A client of one Cordon server.</summary>
/// <example>
/// <code>
/// using var cordon = CordonClient.FromEnvironment();
/// var sandbox = await cordon.CreateSandboxAsync(new() { Image = "default" });
/// var result = await cordon.ExecAsync(sandbox.Id, ExecRequestBody.FromShell("python3 -c 'print(6*7)'"));
/// await cordon.DeleteSandboxAsync(sandbox.Id);
/// </code>
/// </example>
public sealed class CordonClient : IDisposable
{
    /// <summary>Where the server listens unless configured otherwise.</summary>
    public const string DefaultUrl = "http://127.0.0.1:7411";

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;

    public CordonClient(Uri baseUrl, string apiKey, HttpClient? http = null)
    {
        _ownsHttp = http is null;
        _http = http ?? new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        _http.BaseAddress = baseUrl;
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }

    public Uri BaseUrl => _http.BaseAddress!;

    /// <summary>Uses <c>CORDON_URL</c> and <c>CORDON_API_KEY</c>, falling back to <c>~/.config/cordon/config.json</c>
    /// (written by <c>cordon serve</c> when it generates a key).</summary>
    public static CordonClient FromEnvironment()
    {
        var (url, key) = ResolveSettings();
        return new CordonClient(url, key);
    }

    /// <summary>The server URL and API key <see cref="FromEnvironment"/> would use (the key may be empty).</summary>
    public static (Uri Url, string ApiKey) ResolveSettings()
    {
        var url = Environment.GetEnvironmentVariable("CORDON_URL");
        var key = Environment.GetEnvironmentVariable("CORDON_API_KEY");
        var home = Environment.GetEnvironmentVariable("HOME");
        var file = home is null ? null : Path.Combine(home, ".config", "cordon", "config.json");
        if ((url is null || key is null) && file is not null && File.Exists(file))
        {
            using var config = JsonDocument.Parse(File.ReadAllText(file));
            url ??= config.RootElement.TryGetProperty("url", out var u) ? u.GetString() : null;
            key ??= config.RootElement.TryGetProperty("apiKey", out var k) ? k.GetString() : null;
        }

        return (new Uri(url ?? DefaultUrl), key ?? "");
    }

    public Task<HealthReport> GetHealthAsync(CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, "/health", null, ApiJsonContext.Default.HealthReport, cancellationToken);

    // ---- sandboxes ------------------------------------------------------------------------------

    public Task<SandboxInfo> CreateSandboxAsync(CreateSandboxRequest? request = null, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, "/v1/sandboxes", JsonContent.Create(request ?? new CreateSandboxRequest(), ApiJsonContext.Default.CreateSandboxRequest), ApiJsonContext.Default.SandboxInfo, cancellationToken);

    public Task<SandboxInfo> GetSandboxAsync(string id, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, $"/v1/sandboxes/{Uri.EscapeDataString(id)}", null, ApiJsonContext.Default.SandboxInfo, cancellationToken);

    public Task<List<SandboxInfo>> ListSandboxesAsync(bool includeEnded = false, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, includeEnded ? "/v1/sandboxes?state=all" : "/v1/sandboxes", null, ApiJsonContext.Default.ListSandboxInfo, cancellationToken);

    public async Task DeleteSandboxAsync(string id, CancellationToken cancellationToken = default)
    {
        using var response = await _http.DeleteAsync($"/v1/sandboxes/{Uri.EscapeDataString(id)}", cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
    }

    public Task<SandboxInfo> SetTimeoutAsync(string id, int seconds, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/timeout", JsonContent.Create(new SetTimeoutRequest(seconds), ApiJsonContext.Default.SetTimeoutRequest), ApiJsonContext.Default.SandboxInfo, cancellationToken);

    /// <summary>Current resource use: memory, processes, CPU time, network bytes and refused connections.</summary>
    public Task<SandboxMetrics> GetMetricsAsync(string id, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/metrics", null, ApiJsonContext.Default.SandboxMetrics, cancellationToken);

    /// <summary>What the sandbox's traffic may reach.</summary>
    public Task<NetworkPolicy> GetNetworkAsync(string id, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/network", null, ApiJsonContext.Default.NetworkPolicy, cancellationToken);

    /// <summary>Replaces what the running sandbox's traffic may reach; open connections the new policy forbids are closed.</summary>
    public Task<NetworkPolicy> SetNetworkAsync(string id, NetworkPolicy policy, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Put, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/network", JsonContent.Create(policy, ApiJsonContext.Default.NetworkPolicy), ApiJsonContext.Default.NetworkPolicy, cancellationToken);

    /// <summary>Stores a secret (its value is write-only): sandboxes created with it in
    /// <see cref="CreateSandboxRequest.Secrets"/> hold a placeholder that the server's proxy replaces in request
    /// headers on HTTPS to the secret's hosts only.</summary>
    public Task<SecretInfo> CreateSecretAsync(CreateSecretRequest request, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, "/v1/secrets", JsonContent.Create(request, ApiJsonContext.Default.CreateSecretRequest), ApiJsonContext.Default.SecretInfo, cancellationToken);

    public Task<List<SecretInfo>> ListSecretsAsync(CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, "/v1/secrets", null, ApiJsonContext.Default.ListSecretInfo, cancellationToken);

    public Task<SecretInfo> GetSecretAsync(string name, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, $"/v1/secrets/{Uri.EscapeDataString(name)}", null, ApiJsonContext.Default.SecretInfo, cancellationToken);

    /// <summary>Changes a secret's value, hosts or metadata (null fields are kept).</summary>
    public Task<SecretInfo> UpdateSecretAsync(string name, UpdateSecretRequest request, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Put, $"/v1/secrets/{Uri.EscapeDataString(name)}", JsonContent.Create(request, ApiJsonContext.Default.UpdateSecretRequest), ApiJsonContext.Default.SecretInfo, cancellationToken);

    public async Task DeleteSecretAsync(string name, CancellationToken cancellationToken = default)
    {
        using var response = await _http.DeleteAsync($"/v1/secrets/{Uri.EscapeDataString(name)}", cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
    }

    public Task<SandboxInfo> PauseAsync(string id, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/pause", null, ApiJsonContext.Default.SandboxInfo, cancellationToken);

    public Task<SandboxInfo> ResumeAsync(string id, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/resume", null, ApiJsonContext.Default.SandboxInfo, cancellationToken);

    /// <summary>Ends every process and keeps the file system (<see cref="StartAsync"/> brings it back).</summary>
    public Task<SandboxInfo> StopAsync(string id, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/stop", null, ApiJsonContext.Default.SandboxInfo, cancellationToken);

    /// <summary>Starts a stopped sandbox again (or resumes a paused one).</summary>
    public Task<SandboxInfo> StartAsync(string id, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/start", null, ApiJsonContext.Default.SandboxInfo, cancellationToken);

    /// <summary>Changes a sandbox's timers (null fields are kept; 0 turns the idle timer or the retention off).</summary>
    public Task<SandboxInfo> SetTimersAsync(string id, SandboxTimersInfo timers, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Patch, $"/v1/sandboxes/{Uri.EscapeDataString(id)}", JsonContent.Create(timers, ApiJsonContext.Default.SandboxTimersInfo), ApiJsonContext.Default.SandboxInfo, cancellationToken);

    /// <summary>Saves the sandbox's file system as a snapshot; <see cref="CreateSandboxRequest.Snapshot"/> starts new sandboxes from it.</summary>
    public Task<SnapshotInfo> CreateSnapshotAsync(string id, string? name = null, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/snapshots", JsonContent.Create(new CreateSnapshotRequest { Name = name }, ApiJsonContext.Default.CreateSnapshotRequest), ApiJsonContext.Default.SnapshotInfo, cancellationToken);

    public Task<List<SnapshotInfo>> ListSnapshotsAsync(CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, "/v1/snapshots", null, ApiJsonContext.Default.ListSnapshotInfo, cancellationToken);

    public Task<SnapshotInfo> GetSnapshotAsync(string idOrName, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, $"/v1/snapshots/{Uri.EscapeDataString(idOrName)}", null, ApiJsonContext.Default.SnapshotInfo, cancellationToken);

    public async Task DeleteSnapshotAsync(string idOrName, CancellationToken cancellationToken = default)
    {
        using var response = await _http.DeleteAsync($"/v1/snapshots/{Uri.EscapeDataString(idOrName)}", cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
    }

    /// <summary>Makes new sandboxes from the sandbox's file system as it is now; one result per fork.</summary>
    public Task<List<ForkResult>> ForkAsync(string id, int count = 1, int? timeoutSeconds = null, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/fork", JsonContent.Create(new ForkRequest { Count = count, TimeoutSeconds = timeoutSeconds }, ApiJsonContext.Default.ForkRequest), ApiJsonContext.Default.ListForkResult, cancellationToken);

    /// <summary>The warm pools (admin key): per image, sandboxes kept started for creates that ask for the defaults.</summary>
    public Task<List<WarmPool>> ListPoolsAsync(CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, "/v1/pools", null, ApiJsonContext.Default.ListWarmPool, cancellationToken);

    /// <summary>Keeps <paramref name="size"/> sandboxes of <paramref name="image"/> started ahead (0 ends the pool; admin key).</summary>
    public Task<WarmPool> SetPoolAsync(string image, int size, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Put, $"/v1/pools/{Uri.EscapeDataString(image)}", JsonContent.Create(new SetPoolRequest(size), ApiJsonContext.Default.SetPoolRequest), ApiJsonContext.Default.WarmPool, cancellationToken);

    /// <summary>Creates a volume; mount it with <see cref="CreateSandboxRequest.VolumeMounts"/>.</summary>
    public Task<VolumeInfo> CreateVolumeAsync(string name, long? sizeMiB = null, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, "/v1/volumes", JsonContent.Create(new CreateVolumeRequest { Name = name, SizeMiB = sizeMiB }, ApiJsonContext.Default.CreateVolumeRequest), ApiJsonContext.Default.VolumeInfo, cancellationToken);

    public Task<List<VolumeInfo>> ListVolumesAsync(CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, "/v1/volumes", null, ApiJsonContext.Default.ListVolumeInfo, cancellationToken);

    public async Task DeleteVolumeAsync(string name, CancellationToken cancellationToken = default)
    {
        using var response = await _http.DeleteAsync($"/v1/volumes/{Uri.EscapeDataString(name)}", cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
    }

    /// <summary>Writes a file of a volume, without a sandbox.</summary>
    public async Task<VolumeFileInfo> WriteVolumeFileAsync(string volume, string path, Stream content, CancellationToken cancellationToken = default)
    {
        using var body = new StreamContent(content);
        body.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        return await SendAsync(HttpMethod.Put, $"/v1/volumes/{Uri.EscapeDataString(volume)}/files?path={Uri.EscapeDataString(path)}", body, ApiJsonContext.Default.VolumeFileInfo, cancellationToken);
    }

    /// <summary>Reads a file of a volume, without a sandbox.</summary>
    public async Task<Stream> ReadVolumeFileAsync(string volume, string path, CancellationToken cancellationToken = default)
    {
        var response = await _http.GetAsync($"/v1/volumes/{Uri.EscapeDataString(volume)}/files?path={Uri.EscapeDataString(path)}", HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        return await response.Content.ReadAsStreamAsync(cancellationToken);
    }

    public Task<List<VolumeFileInfo>> ListVolumeFilesAsync(string volume, string path = "/", int depth = 1, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, $"/v1/volumes/{Uri.EscapeDataString(volume)}/files?list=true&depth={depth}&path={Uri.EscapeDataString(path)}", null, ApiJsonContext.Default.ListVolumeFileInfo, cancellationToken);

    public Task<List<SandboxEvent>> GetEventsAsync(string id, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/events", null, ApiJsonContext.Default.ListSandboxEvent, cancellationToken);

    // ---- commands -------------------------------------------------------------------------------

    /// <summary>Runs a command to its end.</summary>
    public Task<ExecResult> ExecAsync(string id, ExecRequestBody body, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/exec", JsonContent.Create(body, ApiJsonContext.Default.ExecRequestBody), ApiJsonContext.Default.ExecResult, cancellationToken);

    /// <summary>Runs a command and yields its events as they happen; the last is <c>exit</c> (or <c>error</c>).</summary>
    public IAsyncEnumerable<ExecStreamEvent> ExecStreamAsync(string id, ExecRequestBody body, CancellationToken cancellationToken = default)
        => StreamAsync($"/v1/sandboxes/{Uri.EscapeDataString(id)}/exec", JsonContent.Create(body, ApiJsonContext.Default.ExecRequestBody), ApiJsonContext.Default.ExecStreamEvent, cancellationToken);

    // ---- code -----------------------------------------------------------------------------------

    /// <summary>Runs code in a stateful context (the language's default one unless a context id is given) to its end.</summary>
    public Task<CodeRunResult> RunCodeAsync(string id, RunCodeRequestBody body, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, $"/v1/sandboxes/{Uri.EscapeDataString(id)}/code", JsonContent.Create(body, ApiJsonContext.Default.RunCodeRequestBody), ApiJsonContext.Default.CodeRunResult, cancellationToken);

    /// <summary>Runs code and yields its events as they happen; the last is <c>end</c>. Stopping early interrupts the run.</summary>
    public IAsyncEnumerable<CodeEvent> RunCodeStreamAsync(string id, RunCodeRequestBody body, CancellationToken cancellationToken = default)
        => StreamAsync($"/v1/sandboxes/{Uri.EscapeDataString(id)}/code", JsonContent.Create(body, ApiJsonContext.Default.RunCodeRequestBody), ApiJsonContext.Default.CodeEvent, cancellationToken);

    public Task<ContextInfo> CreateContextAsync(string id, CreateContextRequestBody body, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, ContextsUrl(id, ""), JsonContent.Create(body, ApiJsonContext.Default.CreateContextRequestBody), ApiJsonContext.Default.ContextInfo, cancellationToken);

    public Task<ContextList> ListContextsAsync(string id, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, ContextsUrl(id, ""), null, ApiJsonContext.Default.ContextList, cancellationToken);

    public Task<ContextInfo> GetContextAsync(string id, string contextId, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, ContextsUrl(id, "/" + Uri.EscapeDataString(contextId)), null, ApiJsonContext.Default.ContextInfo, cancellationToken);

    public Task<ContextInfo> RestartContextAsync(string id, string contextId, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, ContextsUrl(id, $"/{Uri.EscapeDataString(contextId)}/restart"), null, ApiJsonContext.Default.ContextInfo, cancellationToken);

    public Task InterruptContextAsync(string id, string contextId, CancellationToken cancellationToken = default)
        => SendEmptyAsync(HttpMethod.Post, ContextsUrl(id, $"/{Uri.EscapeDataString(contextId)}/interrupt"), cancellationToken);

    public Task DeleteContextAsync(string id, string contextId, CancellationToken cancellationToken = default)
        => SendEmptyAsync(HttpMethod.Delete, ContextsUrl(id, "/" + Uri.EscapeDataString(contextId)), cancellationToken);

    // ---- files ----------------------------------------------------------------------------------

    public async Task<FileEntry> WriteFileAsync(string id, string path, Stream content, CancellationToken cancellationToken = default)
    {
        using var body = new StreamContent(content);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return await SendAsync(HttpMethod.Put, FilesUrl(id, "", path), body, ApiJsonContext.Default.FileEntry, cancellationToken);
    }

    /// <summary>Opens a file for reading; the stream comes straight from the sandbox.</summary>
    public async Task<Stream> ReadFileAsync(string id, string path, CancellationToken cancellationToken = default)
    {
        var response = await _http.GetAsync(FilesUrl(id, "", path), HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        return await response.Content.ReadAsStreamAsync(cancellationToken);
    }

    public Task<FileListing> ListFilesAsync(string id, string path, int depth = 1, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, FilesUrl(id, "/list", path) + $"&depth={depth}", null, ApiJsonContext.Default.FileListing, cancellationToken);

    public Task<FileEntry> StatFileAsync(string id, string path, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, FilesUrl(id, "/stat", path), null, ApiJsonContext.Default.FileEntry, cancellationToken);

    // ---- images ---------------------------------------------------------------------------------

    public Task<List<ImageInfo>> ListImagesAsync(CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, "/v1/images", null, ApiJsonContext.Default.ListImageInfo, cancellationToken);

    public Task<ImageInfo> GetImageAsync(string name, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Get, $"/v1/images/{Uri.EscapeDataString(name)}", null, ApiJsonContext.Default.ImageInfo, cancellationToken);

    /// <summary>Imports a root file system tarball or an OCI layout tarball (gzip allowed).</summary>
    public async Task<ImageInfo> ImportImageAsync(string name, Stream tarball, CancellationToken cancellationToken = default)
    {
        using var body = new StreamContent(tarball);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
        return await SendAsync(HttpMethod.Post, $"/v1/images?name={Uri.EscapeDataString(name)}", body, ApiJsonContext.Default.ImageInfo, cancellationToken);
    }

    /// <summary>Starts pulling an image from an OCI registry; it is <c>building</c> until <c>ready</c> or
    /// <c>failed</c> (follow it with <see cref="GetImageAsync"/>).</summary>
    public Task<ImageInfo> PullImageAsync(PullImageRequest request, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, "/v1/images", JsonContent.Create(request, ApiJsonContext.Default.PullImageRequest), ApiJsonContext.Default.ImageInfo, cancellationToken);

    public Task<ImageInfo> BuildImageAsync(string name, bool rebuild = false, CancellationToken cancellationToken = default)
        => SendAsync(HttpMethod.Post, $"/v1/images/{Uri.EscapeDataString(name)}/build?rebuild={(rebuild ? "true" : "false")}", null, ApiJsonContext.Default.ImageInfo, cancellationToken);

    /// <summary>Starts building an image from a Dockerfile; <paramref name="context"/> is the build context as a tar
    /// archive (plain, gzip or zstd) holding the Dockerfile. Follow it with <see cref="FollowBuildAsync"/>.</summary>
    public async Task<ImageInfo> BuildImageFromContextAsync(string name, Stream context, ImageBuildOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ImageBuildOptions();
        var query = new StringBuilder($"/v1/images/{Uri.EscapeDataString(name)}/build?dockerfile={Uri.EscapeDataString(options.Dockerfile)}");
        if (options.Target is not null)
        {
            query.Append("&target=").Append(Uri.EscapeDataString(options.Target));
        }

        if (options.NoCache)
        {
            query.Append("&noCache=true");
        }

        if (options.Network is not null)
        {
            query.Append("&network=").Append(Uri.EscapeDataString(options.Network));
        }

        if (options.StartCmd is not null)
        {
            query.Append("&startCmd=").Append(Uri.EscapeDataString(options.StartCmd));
        }

        if (options.ReadyCmd is not null)
        {
            query.Append("&readyCmd=").Append(Uri.EscapeDataString(options.ReadyCmd));
        }

        foreach (var (arg, value) in options.BuildArgs)
        {
            query.Append("&buildArg=").Append(Uri.EscapeDataString(arg + "=" + value));
        }

        using var body = new StreamContent(context);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
        return await SendAsync(HttpMethod.Post, query.ToString(), body, ApiJsonContext.Default.ImageInfo, cancellationToken);
    }

    /// <summary>The image's last build log from <paramref name="offset"/>, line by line as it is written, until the
    /// build ends (the last event has type <c>done</c>).</summary>
    public IAsyncEnumerable<BuildEvent> FollowBuildAsync(string name, long offset = 0, CancellationToken cancellationToken = default)
        => StreamAsync(HttpMethod.Get, $"/v1/images/{Uri.EscapeDataString(name)}/build?follow=true&offset={offset}", null, ApiJsonContext.Default.BuildEvent, cancellationToken);

    /// <summary>Deletes an image (refused while sandboxes, snapshots or build steps start from it).</summary>
    public Task DeleteImageAsync(string name, CancellationToken cancellationToken = default)
        => SendEmptyAsync(HttpMethod.Delete, $"/v1/images/{Uri.EscapeDataString(name)}", cancellationToken);

    /// <summary>Empties the build step cache.</summary>
    public Task ClearBuildCacheAsync(CancellationToken cancellationToken = default)
        => SendEmptyAsync(HttpMethod.Delete, "/v1/build-cache", cancellationToken);

    // ---- plumbing -------------------------------------------------------------------------------

    private static string ContextsUrl(string id, string suffix) => $"/v1/sandboxes/{Uri.EscapeDataString(id)}/contexts{suffix}";

    private static string FilesUrl(string id, string suffix, string path)
        => $"/v1/sandboxes/{Uri.EscapeDataString(id)}/files{suffix}?path={Uri.EscapeDataString(path)}";

    private async Task<T> SendAsync<T>(HttpMethod method, string url, HttpContent? content, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, url) { Content = content };
        using var response = await _http.SendAsync(request, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        return (await response.Content.ReadFromJsonAsync(typeInfo, cancellationToken))!;
    }

    private async Task SendEmptyAsync(HttpMethod method, string url, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, url);
        using var response = await _http.SendAsync(request, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
    }

    /// <summary>POSTs and yields the NDJSON lines of the streamed answer as they arrive.</summary>
    private IAsyncEnumerable<T> StreamAsync<T>(string url, HttpContent content, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
        => StreamAsync(HttpMethod.Post, url, content, typeInfo, cancellationToken);

    /// <summary>Sends a request and yields the NDJSON lines of the streamed answer as they arrive.</summary>
    private async IAsyncEnumerable<T> StreamAsync<T>(HttpMethod method, string url, HttpContent? content, JsonTypeInfo<T> typeInfo, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, url) { Content = content };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length > 0)
            {
                yield return JsonSerializer.Deserialize(line, typeInfo)!;
            }
        }
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        var code = "http_" + (int)response.StatusCode;
        var message = text;
        try
        {
            using var problem = JsonDocument.Parse(text);
            code = problem.RootElement.TryGetProperty("code", out var c) ? c.GetString() ?? code : code;
            message = problem.RootElement.TryGetProperty("detail", out var d) ? d.GetString() ?? text : text;
        }
        catch (JsonException)
        {
        }

        response.Dispose();
        throw new CordonApiException((int)response.StatusCode, code, string.IsNullOrEmpty(message) ? response.ReasonPhrase ?? "request failed" : message);
    }

    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }
}
