using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>Images pulled from an OCI registry: the tests' own (Debian's docker-registry on a loopback port, filled
/// with skopeo from OCI layouts the tests write), never one outside this machine.</summary>
public sealed class ImagePullTests(ImagePullTests.Registry registry) : IClassFixture<ImagePullTests.Registry>
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private CordonClient Client => registry.Server.Client;

    [Fact]
    public async Task Pull_ByTagAndByDigest_ThenASandboxRunsFromIt()
    {
        var manifestDigest = await registry.PushAsync("team/tiny:1", Layout.Single(gzip: true, marker: "by-tag"));

        var started = await Client.PullImageAsync(new PullImageRequest { From = $"{registry.Host}/team/tiny:1" }, Token);
        Assert.Equal("tiny:1", started.Name); // the last path component and the tag
        var image = await WaitAsync(started.Name);
        Assert.Equal("ready", image.Status);
        await using (var sandbox = await registry.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = image.Name }))
        {
            Assert.Equal("by-tag\n", (await sandbox.ShAsync("cat /marker")).Stdout);
        }

        // A pull never replaces a ready image (one that failed would cost it).
        var again = await Assert.ThrowsAsync<CordonApiException>(() => Client.PullImageAsync(new PullImageRequest { From = $"{registry.Host}/team/tiny:1" }, Token));
        Assert.Equal(409, again.Status);
        Assert.Equal("ready", (await Client.GetImageAsync("tiny:1", Token)).Status);

        var pinned = await WaitAsync((await Client.PullImageAsync(new PullImageRequest { From = $"{registry.Host}/team/tiny@{manifestDigest}", Name = "tiny-pinned" }, Token)).Name);
        Assert.Equal("ready", pinned.Status);
        Assert.Equal(image.Layers, pinned.Layers); // the same layers, stored once
    }

    [Fact]
    public async Task Pull_WhenEveryLayerIsStored_FetchesNoLayer()
    {
        // Two images of one layer; after the first pull, the layer's blob is removed from the registry: only a pull
        // that takes the stored layer instead of fetching it can make the second image.
        var layer = Layout.Layer("shared", gzip: true);
        await registry.PushAsync("team/first:1", Layout.Single(layer, []));
        await registry.PushAsync("team/second:1", Layout.Single(layer, ["SECOND=yes"]));
        Assert.Equal("ready", (await WaitAsync((await Client.PullImageAsync(new PullImageRequest { From = $"{registry.Host}/team/first:1", Name = "first" }, Token)).Name)).Status);
        registry.RemoveBlob(layer.BlobDigest);

        var second = await WaitAsync((await Client.PullImageAsync(new PullImageRequest { From = $"{registry.Host}/team/second:1", Name = "second" }, Token)).Name);
        var refetched = await WaitAsync((await Client.PullImageAsync(new PullImageRequest { From = $"{registry.Host}/team/first:1", Name = "first-again" }, Token)).Name);

        Assert.Equal("ready", second.Status);
        Assert.Equal("ready", refetched.Status);
        Assert.Equal((await Client.GetImageAsync("first", Token)).SizeBytes, second.SizeBytes);
        await using var sandbox = await registry.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = "second" });
        Assert.Equal("shared yes\n", (await sandbox.ShAsync("echo $(cat /marker) $SECOND")).Stdout);
    }

    [Fact]
    public async Task Pull_AManifestListWithZstdLayers_TakesLinuxAmd64()
    {
        await registry.PushAsync("team/multi:2", Layout.ManifestList(), all: true);

        var image = await WaitAsync((await Client.PullImageAsync(new PullImageRequest { From = $"{registry.Host}/team/multi:2", Name = "multi" }, Token)).Name);

        Assert.Equal("ready", image.Status);
        await using var sandbox = await registry.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = "multi" });
        Assert.Equal("amd64\n", (await sandbox.ShAsync("cat /marker")).Stdout);
    }

    [Fact]
    public async Task Pull_OfWhatTheRegistryLacks_FailsWithItsReason_AndLeavesNothingToStartFrom()
    {
        await registry.PushAsync("team/tiny:1", Layout.Single(gzip: true, marker: "by-tag"));
        var wrong = "sha256:" + new string('0', 64);

        var failed = await WaitAsync((await Client.PullImageAsync(new PullImageRequest { From = $"{registry.Host}/team/tiny@{wrong}", Name = "wrong-digest" }, Token)).Name);
        var missing = await WaitAsync((await Client.PullImageAsync(new PullImageRequest { From = $"{registry.Host}/team/nothing:1", Name = "missing-repo" }, Token)).Name);

        Assert.Equal("failed", failed.Status);
        Assert.Contains("manifest unknown", failed.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("failed", missing.Status);
        Assert.DoesNotContain("/var/", missing.Message + failed.Message, StringComparison.Ordinal); // no host path
        var error = await Assert.ThrowsAsync<CordonApiException>(() => registry.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = "wrong-digest" }));
        Assert.Equal(409, error.Status);
    }

    [Fact]
    public async Task Pull_FromARegistryWithTokenAuth_TradesTheCredentialsForABearerToken()
    {
        await registry.PushAsync($"{registry.TokenHost}/team/tokened:1", Layout.Single(gzip: true, marker: "behind a token"));
        var grantedBefore = registry.Tokens.Granted;

        var anonymous = await WaitAsync((await Client.PullImageAsync(new PullImageRequest { From = $"{registry.TokenHost}/team/tokened:1", Name = "tokened-anon" }, Token)).Name);
        var wrong = await WaitAsync((await Client.PullImageAsync(new PullImageRequest
        {
            From = $"{registry.TokenHost}/team/tokened:1",
            Name = "tokened-wrong",
            Credentials = new RegistryCredentials { Username = registry.User, Password = "not-" + registry.Password },
        }, Token)).Name);
        var image = await WaitAsync((await Client.PullImageAsync(new PullImageRequest
        {
            From = $"{registry.TokenHost}/team/tokened:1",
            Name = "tokened",
            Credentials = new RegistryCredentials { Username = registry.User, Password = registry.Password },
        }, Token)).Name);

        Assert.Equal("failed", anonymous.Status); // an anonymous token grants nothing here
        Assert.Equal("failed", wrong.Status); // the token service refuses the password
        Assert.Equal("ready", image.Status);
        Assert.True(registry.Tokens.Granted > grantedBefore, "the pull never asked the token service for a token");
        await using var sandbox = await registry.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = "tokened" });
        Assert.Equal("behind a token\n", (await sandbox.ShAsync("cat /marker")).Stdout);
    }

    [Fact]
    public async Task Pull_FromARegistryWithBasicAuth_NeedsTheCredentials_WhichAreKeptNowhere()
    {
        await registry.PushAsync($"{registry.AuthHost}/private/tiny:3", Layout.Single(gzip: true, marker: "private"));

        var anonymous = await WaitAsync((await Client.PullImageAsync(new PullImageRequest { From = $"{registry.AuthHost}/private/tiny:3", Name = "private-anon" }, Token)).Name);
        var wrong = await WaitAsync((await Client.PullImageAsync(new PullImageRequest
        {
            From = $"{registry.AuthHost}/private/tiny:3",
            Name = "private-wrong",
            Credentials = new RegistryCredentials { Username = registry.User, Password = "not-" + registry.Password },
        }, Token)).Name);
        var image = await WaitAsync((await Client.PullImageAsync(new PullImageRequest
        {
            From = $"{registry.AuthHost}/private/tiny:3",
            Name = "private",
            Credentials = new RegistryCredentials { Username = registry.User, Password = registry.Password },
        }, Token)).Name);

        Assert.Equal("failed", anonymous.Status);
        Assert.Contains("authentication required", anonymous.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("failed", wrong.Status);
        Assert.Equal("ready", image.Status);
        await using (var sandbox = await registry.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = "private" }))
        {
            Assert.Equal("private\n", (await sandbox.ShAsync("cat /marker")).Stdout);
        }

        // The password is in no answer, and no pull's scratch directory (where its auth file was) is left.
        var listed = await registry.Server.Http.GetStringAsync("/v1/images", Token);
        Assert.DoesNotContain(registry.Password, listed, StringComparison.Ordinal);
        var pulls = Path.Combine(registry.Server.DataDir, "pulls");
        Assert.True(Directory.Exists(pulls), "the pulls' scratch directory is not where this test looks");
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(pulls, "*", SearchOption.AllDirectories), path => path.EndsWith("auth.json", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cli_ImagePull_FollowsToReady_WithThePasswordFromStdin()
    {
        await registry.PushAsync($"{registry.AuthHost}/private/cli:1", Layout.Single(gzip: true, marker: "cli"));

        var (exit, stdout, stderr) = await CordonAsync(registry.Password + "\n", "image", "pull", "--name", "from-cli", "--username", registry.User, $"{registry.AuthHost}/private/cli:1");
        var (badExit, badOut, _) = await CordonAsync("", "image", "pull", "--name", "from-cli-missing", $"{registry.Host}/team/absent:1");

        Assert.True(exit == 0, $"cordon image pull: {stdout}{stderr}");
        Assert.Contains("from-cli: ready", stdout, StringComparison.Ordinal);
        Assert.Equal("ready", (await Client.GetImageAsync("from-cli", Token)).Status);
        Assert.Equal(1, badExit);
        Assert.Contains("from-cli-missing: failed", badOut, StringComparison.Ordinal);
    }

    private Task<(int ExitCode, string Stdout, string Stderr)> CordonAsync(string input, params string[] args)
        => CordonCli.RunAsync(registry.Server, input, args);

    [Theory]
    [InlineData("")]
    [InlineData("-oProxyCommand=x")]
    [InlineData("Team/Upper:1")]
    [InlineData("registry.example.com/a b")]
    [InlineData("host/repo@sha256:1234")]
    public async Task Pull_BadReferences_Are400(string reference)
    {
        var error = await Assert.ThrowsAsync<CordonApiException>(() => Client.PullImageAsync(new PullImageRequest { From = reference }, Token));

        Assert.Equal(400, error.Status);
    }

    [Theory]
    [InlineData("{\"from\": \"127.0.0.1:1/a:1\", \"credentials\": {\"username\": \"u\", \"password\": null}}")]
    [InlineData("{\"from\": \"127.0.0.1:1/a:1\", \"credentials\": {\"username\": \"u:x\", \"password\": \"p\"}}")]
    [InlineData("{\"from\": \"127.0.0.1:1/a:1\", \"credentials\": {\"username\": \"u\", \"password\": \"p\\r\\nX: y\"}}")]
    [InlineData("{\"from\": null}")]
    [InlineData("{\"name\": \"x\"}")]
    [InlineData("[1, 2]")]
    [InlineData("{\"from\": \"127.0.0.1:1/a:1\", \"name\": \"Not A Name\"}")]
    public async Task Pull_BadBodies_Are400(string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await registry.Server.Http.PostAsync("/v1/images", content, Token);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Pull_ByATenant_IsItsOwn_AndAnotherTenantsLayersAreNeverPresentForIt()
    {
        // Alice pulls an image; its layer's blob then leaves the registry. A pull that took a stored layer because it
        // knows its digest would hand Bob what only Alice has: Bob's pull must fetch it (and so fail), Alice's not.
        var layer = Layout.Layer("alice's layer " + Guid.NewGuid().ToString("N"), gzip: true);
        await registry.PushAsync("team/private-layers:1", Layout.Single(layer, []));
        var (aliceId, aliceSecret) = await registry.Server.CreateKeyAsync("alice-" + Guid.NewGuid().ToString("N")[..6]);
        var (_, bobSecret) = await registry.Server.CreateKeyAsync("bob-" + Guid.NewGuid().ToString("N")[..6]);
        using var alice = new CordonClient(registry.Server.Address, aliceSecret);
        using var bob = new CordonClient(registry.Server.Address, bobSecret);
        var from = $"{registry.Host}/team/private-layers:1";

        var pulled = await alice.PullImageAsync(new PullImageRequest { From = from, Name = "mine" }, Token);
        Assert.Equal("mine", pulled.Name);
        Assert.Equal("ready", (await WaitAsync(alice, "mine")).Status);
        Assert.Contains(await Client.ListImagesAsync(Token), i => i.Name == $"{aliceId}/mine");
        registry.RemoveBlob(layer.BlobDigest);

        await bob.PullImageAsync(new PullImageRequest { From = from, Name = "mine" }, Token);
        var bobs = await WaitAsync(bob, "mine");
        await alice.PullImageAsync(new PullImageRequest { From = from, Name = "mine-again" }, Token);
        var alices = await WaitAsync(alice, "mine-again");

        Assert.Equal("failed", bobs.Status);
        Assert.Equal("ready", alices.Status);
        Assert.DoesNotContain(await bob.ListImagesAsync(Token), i => i.Status == "ready" && i.Name.StartsWith("mine", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Pull_WithThePasswordInASecret_UsesItOnlyForRegistriesTheSecretAllows()
    {
        // The registry by a name (a secret's hosts are names): localhost, at the basic-auth registry's port.
        var named = registry.AuthHost.Replace("127.0.0.1", "localhost", StringComparison.Ordinal);
        await registry.PushAsync($"{registry.AuthHost}/private/kept:1", Layout.Single(gzip: true, marker: "kept in a secret"));
        var (_, aliceSecret) = await registry.Server.CreateKeyAsync("alice-" + Guid.NewGuid().ToString("N")[..6]);
        var (_, bobSecret) = await registry.Server.CreateKeyAsync("bob-" + Guid.NewGuid().ToString("N")[..6]);
        using var alice = new CordonClient(registry.Server.Address, aliceSecret);
        using var bob = new CordonClient(registry.Server.Address, bobSecret);
        await alice.CreateSecretAsync(new CreateSecretRequest { Name = "registry-pw", Value = registry.Password, Hosts = ["localhost"] }, Token);
        await alice.CreateSecretAsync(new CreateSecretRequest { Name = "elsewhere-pw", Value = registry.Password, Hosts = ["registry.example.com"] }, Token);
        PullImageRequest Pull(string name, string secret)
            => new() { From = $"{named}/private/kept:1", Name = name, Credentials = new RegistryCredentials { Username = registry.User, PasswordSecret = secret } };

        var pulled = await alice.PullImageAsync(Pull("kept", "registry-pw"), Token);
        var notAllowed = await Assert.ThrowsAsync<CordonApiException>(() => alice.PullImageAsync(Pull("kept-2", "elsewhere-pw"), Token));
        var notHers = await Assert.ThrowsAsync<CordonApiException>(() => bob.PullImageAsync(Pull("kept", "registry-pw"), Token));

        Assert.Equal("ready", (await WaitAsync(alice, pulled.Name)).Status);
        Assert.Equal(400, notAllowed.Status);
        Assert.Contains("may not be sent to", notAllowed.Message, StringComparison.Ordinal);
        Assert.Equal(404, notHers.Status); // Bob's key has no such secret: Alice's is not his to use
    }

    [Fact]
    public async Task Pull_LargerThanTheServerTakes_FailsAndLeavesNothing()
    {
        // 8 MiB of random text (about 4 MiB compressed) above busybox, against a limit of 4 MiB (the server's own import of
        // busybox, 2.2 MiB, fits under it).
        await registry.PushAsync("team/big:1", Layout.Single(gzip: true, marker: Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4 << 20))));
        await using var small = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Cordon:InsecureRegistries:0"] = registry.Host,
            ["Cordon:MaxUploadBytes"] = (4 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

        var image = await WaitAsync(small.Client, (await small.Client.PullImageAsync(new PullImageRequest { From = $"{registry.Host}/team/big:1", Name = "big" }, Token)).Name);

        Assert.Equal("failed", image.Status);
        Assert.Contains("larger than this server takes", image.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(small.DataDir, "pulls")));
    }

    private static async Task<ImageInfo> WaitAsync(CordonClient client, string name)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(120); DateTime.UtcNow < deadline; await Task.Delay(100, Token))
        {
            var image = await client.GetImageAsync(name, Token);
            if (image.Status != "building")
            {
                return image;
            }
        }

        Assert.Fail($"The image {name} was still being pulled after 120 s.");
        return null!;
    }

    private Task<ImageInfo> WaitAsync(string name) => WaitAsync(Client, name);

    /// <summary>The tests' registries (plain HTTP on loopback ports: one open, one with basic auth) and a server
    /// that may pull from them.</summary>
    public sealed class Registry : IAsyncLifetime
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("cordon-registry-").FullName;
        private readonly List<Process> _processes = [];

        public string Host { get; private set; } = "";

        public string AuthHost { get; private set; } = "";

        /// <summary>A registry that wants bearer tokens from <see cref="Tokens"/>.</summary>
        public string TokenHost { get; private set; } = "";

        public TokenService Tokens { get; private set; } = null!;

        public string User => "puller";

        public string Password { get; } = "pw-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

        public ServerFixture Server { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            Assert.True(File.Exists("/usr/bin/docker-registry"), "docker-registry is missing: ./cordon test installs it.");
            Assert.True(File.Exists("/usr/bin/skopeo"), "skopeo is missing: ./cordon installs it.");
            var htpasswd = Path.Combine(_directory, "htpasswd");
            await File.WriteAllTextAsync(htpasswd, $"{User}:{BCrypt.Net.BCrypt.HashPassword(Password, workFactor: 5)}\n");
            Host = await StartAsync("open", null);
            AuthHost = await StartAsync("auth", $"""
                auth:
                  htpasswd:
                    realm: cordon-tests
                    path: {htpasswd}
                """);
            Tokens = new TokenService(_directory, User, Password);
            TokenHost = await StartAsync("token", $"""
                auth:
                  token:
                    realm: {Tokens.Realm}
                    service: {TokenService.Service}
                    issuer: {TokenService.Issuer}
                    rootcertbundle: {Tokens.CertificateFile}
                """);
            Server = await ServerFixture.StartAsync(overrides: new Dictionary<string, string?>
            {
                ["Cordon:InsecureRegistries:0"] = Host,
                ["Cordon:InsecureRegistries:1"] = AuthHost,
                ["Cordon:InsecureRegistries:2"] = TokenHost,
                ["Cordon:InsecureRegistries:3"] = AuthHost.Replace("127.0.0.1", "localhost", StringComparison.Ordinal),
            });
        }

        private async Task<string> StartAsync(string name, string? auth)
        {
            var host = $"127.0.0.1:{FreePort()}";
            var config = Path.Combine(_directory, name + ".yml");
            await File.WriteAllTextAsync(config, $"""
                version: 0.1
                log:
                  level: warn
                storage:
                  filesystem:
                    rootdirectory: {Path.Combine(_directory, name)}
                http:
                  addr: {host}

                """ + (auth ?? ""));
            var process = Process.Start(new ProcessStartInfo("/usr/bin/docker-registry", ["serve", config]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            _processes.Add(process);
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            using var http = new HttpClient();
            for (var deadline = DateTime.UtcNow.AddSeconds(20); ; await Task.Delay(50))
            {
                try
                {
                    var status = (await http.GetAsync($"http://{host}/v2/")).StatusCode;
                    if (status is HttpStatusCode.OK or HttpStatusCode.Unauthorized)
                    {
                        return host;
                    }
                }
                catch (HttpRequestException) when (DateTime.UtcNow < deadline)
                {
                }
            }
        }

        /// <summary>Pushes an OCI layout (written to a directory) as <paramref name="target"/> (on the open registry
        /// unless it names the other); returns the digest of what the tag points at.</summary>
        public async Task<string> PushAsync(string target, Layout layout, bool all = false)
        {
            var dir = Path.Combine(_directory, "layout-" + Guid.NewGuid().ToString("N"));
            layout.WriteTo(dir);
            var destination = target.StartsWith("127.0.0.1:", StringComparison.Ordinal) ? target : $"{Host}/{target}";
            string[] args = ["copy", "--quiet", "--dest-tls-verify=false", .. all ? new[] { "--all" } : [],
                .. destination.StartsWith(AuthHost, StringComparison.Ordinal) || destination.StartsWith(TokenHost, StringComparison.Ordinal) ? new[] { "--dest-creds", $"{User}:{Password}" } : [],
                $"oci:{dir}:{Layout.RefName}", $"docker://{destination}"];
            using var push = Process.Start(new ProcessStartInfo("/usr/bin/skopeo", args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            var stderr = await push.StandardError.ReadToEndAsync();
            await push.WaitForExitAsync();
            Assert.True(push.ExitCode == 0, $"skopeo push of {target} failed: {stderr}");
            return layout.TopDigest;
        }

        /// <summary>Deletes a blob from the open registry's storage (its repositories still name it).</summary>
        public void RemoveBlob(string digest)
        {
            var hex = digest["sha256:".Length..];
            var data = Path.Combine(_directory, "open", "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
            Assert.True(File.Exists(data), $"the registry keeps no blob at {data}");
            File.Delete(data);
        }

        public async ValueTask DisposeAsync()
        {
            if (Server is not null)
            {
                await Server.DisposeAsync();
            }

            foreach (var process in _processes)
            {
                if (!process.HasExited)
                {
                    process.Kill();
                    await process.WaitForExitAsync();
                }

                process.Dispose();
            }

            Tokens?.Dispose();
            Directory.Delete(_directory, recursive: true);
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
    }

    /// <summary>The token service of a registry with token auth, as distribution's specification describes it: a JWT
    /// signed with ES256 whose signing certificate (the registry's trusted root) travels in the x5c header, granting
    /// the scope asked to the user with the right password, nothing to an anonymous client, and 401 to a wrong
    /// password.</summary>
    public sealed class TokenService : IDisposable
    {
        public const string Service = "cordon-tests-registry";
        public const string Issuer = "cordon-tests-issuer";

        private readonly HttpListener _listener = new();
        private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        private readonly X509Certificate2 _certificate;
        private readonly string _user;
        private readonly string _password;
        private int _granted;

        public TokenService(string directory, string user, string password)
        {
            _user = user;
            _password = password;
            _certificate = new CertificateRequest("CN=cordon-tests-token", _key, HashAlgorithmName.SHA256)
                .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            CertificateFile = Path.Combine(directory, "token.crt");
            File.WriteAllText(CertificateFile, _certificate.ExportCertificatePem());
            var port = FreePort();
            Realm = $"http://127.0.0.1:{port}/token";
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            _listener.Start();
            _ = Task.Run(ServeAsync);
        }

        public string Realm { get; }

        public string CertificateFile { get; }

        /// <summary>Tokens granted with access (to the right password).</summary>
        public int Granted => Volatile.Read(ref _granted);

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                using var response = context.Response;
                var sent = context.Request.Headers["Authorization"];
                string? subject = null;
                if (sent is not null && sent.StartsWith("Basic ", StringComparison.Ordinal))
                {
                    if (Encoding.UTF8.GetString(Convert.FromBase64String(sent[6..])) != $"{_user}:{_password}")
                    {
                        response.StatusCode = 401;
                        continue;
                    }

                    subject = _user;
                }

                var access = (context.Request.QueryString.GetValues("scope") ?? []).Select(scope => scope.Split(':')).Where(p => p.Length == 3 && subject is not null)
                    .Select(p => new { type = p[0], name = p[1], actions = p[2].Split(',') }).ToList();
                if (access.Count > 0)
                {
                    Interlocked.Increment(ref _granted);
                }

                var token = Sign(new
                {
                    iss = Issuer,
                    sub = subject ?? "",
                    aud = Service,
                    exp = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds(),
                    nbf = DateTimeOffset.UtcNow.AddSeconds(-30).ToUnixTimeSeconds(),
                    iat = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                    jti = Guid.NewGuid().ToString("N"),
                    access,
                });
                var body = JsonSerializer.SerializeToUtf8Bytes(new { token, access_token = token, expires_in = 300 });
                response.ContentType = "application/json";
                await response.OutputStream.WriteAsync(body);
            }
        }

        private string Sign(object claims)
        {
            static string Encode(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
            var header = Encode(JsonSerializer.SerializeToUtf8Bytes(new { typ = "JWT", alg = "ES256", x5c = new[] { Convert.ToBase64String(_certificate.RawData) } }));
            var payload = Encode(JsonSerializer.SerializeToUtf8Bytes(claims));
            var signature = _key.SignData(Encoding.ASCII.GetBytes(header + "." + payload), HashAlgorithmName.SHA256); // r || s, as JWS wants
            return $"{header}.{payload}.{Encode(signature)}";
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        public void Dispose()
        {
            _listener.Close();
            _certificate.Dispose();
            _key.Dispose();
        }
    }

    /// <summary>An OCI image layout: content-addressed blobs and an index whose one entry is named
    /// <see cref="RefName"/> (an image, or a manifest list of images).</summary>
    public sealed class Layout
    {
        public const string RefName = "t";

        private readonly Dictionary<string, byte[]> _blobs = [];
        private string _topMediaType = "";

        public string TopDigest { get; private set; } = "";

        /// <summary>One linux/amd64 image: busybox and a file /marker.</summary>
        public static Layout Single(bool gzip, string marker) => Single(Layer(marker, gzip), []);

        /// <summary>One linux/amd64 image of a given layer, with extra environment variables in its config.</summary>
        public static Layout Single(SharedLayer layer, string[] env)
        {
            var layout = new Layout();
            layout.TopDigest = layout.Image("amd64", layer, env).Digest;
            layout._topMediaType = "application/vnd.oci.image.manifest.v1+json";
            return layout;
        }

        /// <summary>A busybox layer with /marker, compressed once (so that two images can hold the very same blob).</summary>
        public static SharedLayer Layer(string marker, bool gzip)
        {
            var tar = WithMarker(BusyboxImage.CreateTarball(), marker);
            var blob = gzip ? Gzip(tar) : Zstd(tar);
            return new SharedLayer(blob, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)), gzip);
        }

        /// <summary>An index of a linux/arm64 image (listed first) and a linux/amd64 one with a zstd layer.</summary>
        public static Layout ManifestList()
        {
            var layout = new Layout();
            var arm = layout.Image("arm64", Layer("arm64", gzip: true), []);
            var amd = layout.Image("amd64", Layer("amd64", gzip: false), []);
            var index = Json(new
            {
                schemaVersion = 2,
                mediaType = "application/vnd.oci.image.index.v1+json",
                manifests = new[]
                {
                    new { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = arm.Digest, size = arm.Size, platform = new { architecture = "arm64", os = "linux" } },
                    new { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = amd.Digest, size = amd.Size, platform = new { architecture = "amd64", os = "linux" } },
                },
            });
            layout.TopDigest = layout.Add(index);
            layout._topMediaType = "application/vnd.oci.image.index.v1+json";
            return layout;
        }

        public void WriteTo(string dir)
        {
            Directory.CreateDirectory(Path.Combine(dir, "blobs", "sha256"));
            foreach (var (digest, data) in _blobs)
            {
                File.WriteAllBytes(Path.Combine(dir, "blobs", "sha256", digest["sha256:".Length..]), data);
            }

            File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
            File.WriteAllBytes(Path.Combine(dir, "index.json"), Json(new
            {
                schemaVersion = 2,
                manifests = new[]
                {
                    new
                    {
                        mediaType = _topMediaType,
                        digest = TopDigest,
                        size = _blobs[TopDigest].Length,
                        annotations = new Dictionary<string, string> { ["org.opencontainers.image.ref.name"] = RefName },
                    },
                },
            }));
        }

        private (string Digest, int Size) Image(string architecture, SharedLayer layer, string[] env)
        {
            var config = Json(new
            {
                architecture,
                os = "linux",
                config = new { Env = new[] { "PATH=/bin" }.Concat(env).ToArray() },
                rootfs = new { type = "layers", diff_ids = new[] { layer.DiffId } },
            });
            var manifest = Json(new
            {
                schemaVersion = 2,
                mediaType = "application/vnd.oci.image.manifest.v1+json",
                config = new { mediaType = "application/vnd.oci.image.config.v1+json", digest = Add(config), size = config.Length },
                layers = new[]
                {
                    new { mediaType = layer.Gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar+zstd", digest = Add(layer.Blob), size = layer.Blob.Length },
                },
            });
            return (Add(manifest), manifest.Length);
        }

        private string Add(byte[] blob)
        {
            var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(blob));
            _blobs[digest] = blob;
            return digest;
        }

        private static byte[] Json(object value) => JsonSerializer.SerializeToUtf8Bytes(value);

        private static byte[] WithMarker(MemoryStream tarball, string marker)
        {
            var combined = new MemoryStream();
            using (var writer = new TarWriter(combined, TarEntryFormat.Pax, leaveOpen: true))
            {
                using var reader = new TarReader(tarball);
                while (reader.GetNextEntry(copyData: true) is { } entry)
                {
                    writer.WriteEntry(entry);
                }

                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "marker")
                {
                    Mode = (UnixFileMode)0b110_100_100,
                    DataStream = new MemoryStream(Encoding.UTF8.GetBytes(marker + "\n")),
                });
            }

            return combined.ToArray();
        }

        private static byte[] Gzip(byte[] data)
        {
            var output = new MemoryStream();
            using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
            {
                gzip.Write(data);
            }

            return output.ToArray();
        }

        private static byte[] Zstd(byte[] data)
        {
            using var compressor = new ZstdSharp.Compressor(3);
            return compressor.Wrap(data).ToArray();
        }
    }

    /// <summary>A compressed layer blob and the digest of its tar (its diff id).</summary>
    public sealed record SharedLayer(byte[] Blob, string DiffId, bool Gzip)
    {
        public string BlobDigest => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Blob));
    }
}
