using System.Formats.Tar;
using System.Net;
using System.Text;
using Cordon.Client;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>Images built from Dockerfiles, as users build them: a context sent over REST (and by the CLI), every step
/// run in a real sandbox, the log followed to its end, then sandboxes started from the image.</summary>
[Collection(DefaultImageCollection.Name)]
public sealed class ImageBuildTests(DefaultImageServer fixture)
{
    private const string Pkgs = "pkgs." + TestInternet.Domain;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private CordonClient Client => fixture.Server.Client;

    [Fact]
    public async Task Build_CopyRunEnvUserWorkdir_FetchingFromTheInternet_ThenASandboxRunsFromIt()
    {
        TestInternet.EnsureUp();
        var name = Name("app");
        var (events, image) = await BuildAsync(name, new()
        {
            ["Dockerfile"] = $"""
                # syntax=docker/dockerfile:1
                FROM default
                ARG GREETING=hello
                ENV APP_HOME=/opt/app \
                    SAID="$GREETING world"
                WORKDIR $APP_HOME
                COPY app/ ./
                COPY ca.crt /tmp/ca.crt
                RUN pip install -q --disable-pip-version-check --root-user-action=ignore --cert /tmp/ca.crt \
                        --index-url https://{Pkgs}/simple/ cordon-hello \
                    && python3 -c 'import cordon_hello; print(cordon_hello.GREETING)' > fetched.txt
                RUN useradd -m -u 1500 builder && chown -R builder /opt/app
                USER builder
                RUN echo "$(id -un) $SAID $(pwd)" > who.txt
                EXPOSE 8080
                CMD ["python3", "main.py"]
                """,
            ["app/main.py"] = "print('main')\n",
            ["app/lib/util.py"] = "X = 1\n",
            ["ca.crt"] = await File.ReadAllTextAsync(TestInternet.CaCertificate, Token),
        }, new ImageBuildOptions { BuildArgs = new Dictionary<string, string> { ["GREETING"] = "hi" } });

        Assert.Equal("ready", image.Status);
        Assert.Equal("ready", events[^1].Status);
        Assert.Equal(Enumerable.Range(1, 12), events.Where(e => e.Type == "step").Select(e => e.Step!.Value));
        Assert.All(events.Where(e => e.Type == "step"), e => Assert.Equal(12, e.Steps));
        Assert.Contains(events, e => e.Type == "info" && e.Message!.Contains("EXPOSE", StringComparison.Ordinal));
        Assert.Equal("builder", image.User);
        Assert.Equal("/opt/app", image.WorkingDir);
        Assert.Equal(["python3", "main.py"], image.Cmd);
        Assert.Equal("hi world", image.Env["SAID"]);

        await using var sandbox = await fixture.CreateSandboxAsync(new CreateSandboxRequest { Image = name });
        var result = await sandbox.ShAsync("id -un; pwd; cat fetched.txt who.txt; python3 main.py; ls lib; stat -c %U /opt/app/main.py; echo $SAID");
        Assert.Equal("builder\n/opt/app\nhello from the test index\nbuilder hi world /opt/app\nmain\nutil.py\nbuilder\nhi world\n", result.Stdout);
    }

    [Fact]
    public async Task Rebuild_Unchanged_TakesEveryStepFromTheCache_AndAChangedFileRunsFromItsStepOn()
    {
        var name = Name("cached");
        var files = new Dictionary<string, string>
        {
            ["Dockerfile"] = """
                FROM busybox
                WORKDIR /work
                RUN echo first > first.txt && echo ran-first
                COPY data.txt .
                RUN cat data.txt first.txt > both.txt && echo ran-second
                ENV DONE=yes
                """,
            ["data.txt"] = "v1\n",
        };
        var (first, _) = await BuildAsync(name, files);
        Assert.Contains(first, e => e.Type == "output" && e.Message == "ran-second");

        var (again, image) = await BuildAsync(name, files);

        Assert.Equal("ready", image.Status);
        Assert.All(again.Where(e => e.Type == "step" && e.Instruction!.Split(' ')[0] is "WORKDIR" or "RUN" or "COPY"), e => Assert.True(e.Cached, e.Instruction));
        Assert.DoesNotContain(again, e => e.Type == "output");
        Assert.Contains("4 of 6 steps from the cache", again[^1].Message, StringComparison.Ordinal);

        files["data.txt"] = "v2\n";
        var (changed, rebuilt) = await BuildAsync(name, files);
        var cached = changed.Where(e => e.Type == "step").ToDictionary(e => e.Step!.Value, e => e.Cached);
        Assert.True(cached[2]); // WORKDIR
        Assert.True(cached[3]); // the RUN before the COPY
        Assert.False(cached[4]); // the COPY of the changed file
        Assert.False(cached[5]);
        Assert.DoesNotContain(changed, e => e.Message == "ran-first");
        Assert.Contains(changed, e => e.Message == "ran-second");

        await using var sandbox = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = rebuilt.Name });
        Assert.Equal("v2\nfirst\nyes\n", (await sandbox.ShAsync("cat /work/both.txt; echo $DONE")).Stdout);
    }

    [Fact]
    public async Task FailedStep_ReportsItsCommandExitCodeAndLastLines_AndTheImageOfThatNameStays()
    {
        var name = Name("fails");
        var (_, good) = await BuildAsync(name, new() { ["Dockerfile"] = "FROM busybox\nRUN echo good > /state\n" });
        Assert.Equal("ready", good.Status);

        var (events, after) = await BuildAsync(name, new()
        {
            ["Dockerfile"] = "FROM busybox\nRUN echo good > /state\nRUN for i in 1 2 3 4 5; do echo line $i; done; echo broken >&2; exit 7\nRUN echo never\n",
        });

        var error = Assert.Single(events, e => e.Type == "error");
        Assert.Equal(7, error.ExitCode);
        Assert.Contains("step 3/4 (line 3)", error.Message, StringComparison.Ordinal);
        Assert.Contains("exit 7", error.Message, StringComparison.Ordinal);
        Assert.Contains("exit code 7", error.Message, StringComparison.Ordinal);
        Assert.Equal(["line 4", "line 5", "broken"], error.LastLines!.TakeLast(3));
        Assert.Equal("failed", events[^1].Status);
        Assert.DoesNotContain(events, e => e.Message == "never");

        // The build that failed cost nothing: the image of that name is the one before.
        Assert.Equal("ready", after.Status);
        Assert.Equal(good.Digest, after.Digest);
        await using var sandbox = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = name });
        Assert.Equal("good\n", (await sandbox.ShAsync("cat /state")).Stdout);
        Assert.DoesNotContain(await Client.ListSandboxesAsync(cancellationToken: Token), s => s.Metadata.ContainsKey("cordon.build"));

        // A new name that fails shows why.
        var other = Name("fails-new");
        var (_, failed) = await BuildAsync(other, new() { ["Dockerfile"] = "FROM busybox\nRUN false\n" });
        Assert.Equal("failed", failed.Status);
        Assert.Contains("`RUN false` failed with exit code 1", failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MultiStage_CopiesFromAnEarlierStage_AndTargetBuildsOneStage()
    {
        var name = Name("multi");
        var files = new Dictionary<string, string>
        {
            ["Dockerfile"] = """
                FROM default AS build
                WORKDIR /src
                COPY hello.c .
                RUN gcc -O2 -static -o hello hello.c 2>&1 || (printf '#!/bin/sh\necho hello from a stage\n' > hello && chmod +x hello)
                RUN echo not-copied > /src/other.txt && ln -s hello /src/hello-link

                FROM busybox AS unused
                RUN exit 1

                FROM busybox
                COPY --from=build /src/hello /usr/local/bin/hello
                COPY --from=build --chown=1000 /src/hello-link /opt/
                """,
            ["hello.c"] = "#include <stdio.h>\nint main(void) { puts(\"hello from a stage\"); return 0; }\n",
        };

        var (events, image) = await BuildAsync(name, files);

        Assert.Equal("ready", image.Status);
        Assert.DoesNotContain(events, e => e.Stage == "unused"); // a stage the target does not need is not built
        await using (var sandbox = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = name }))
        {
            Assert.Equal("hello from a stage\n", (await sandbox.ShAsync("hello")).Stdout);
            Assert.Equal("hello 1000:1000\nabsent\n", (await sandbox.ShAsync("echo $(readlink /opt/hello-link) $(stat -c %u:%g /opt/hello-link); test -e /src || echo absent")).Stdout);
        }

        var (_, first) = await BuildAsync(Name("multi-build"), files, new ImageBuildOptions { Target = "build" });
        await using var builder = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = first.Name });
        Assert.Equal("not-copied\n/src\n", (await builder.ShAsync("cat other.txt; pwd")).Stdout);
    }

    [Fact]
    public async Task ReadyTemplate_ItsServerAnswersTheFirstRequest_FromAWarmPoolToo()
    {
        var name = Name("served");
        var (_, image) = await BuildAsync(name, new() { ["Dockerfile"] = "FROM default\nWORKDIR /srv\nRUN echo served-by-template > index.html\n" }, new ImageBuildOptions
        {
            // The server comes up half a second after it starts: only a create that waits for the ready command sees it.
            StartCmd = "sleep 0.5 && exec python3 -m http.server 8000",
            ReadyCmd = "curl -sf http://127.0.0.1:8000/ > /dev/null",
        });
        Assert.Equal("sleep 0.5 && exec python3 -m http.server 8000", image.StartCmd);

        await using (var sandbox = await fixture.CreateSandboxAsync(new CreateSandboxRequest { Image = name }))
        {
            Assert.Equal("served-by-template\n", (await sandbox.ShAsync("curl -s http://127.0.0.1:8000/index.html")).Stdout);
            var events = await Client.GetEventsAsync(sandbox.Id, Token);
            Assert.Contains(events, e => e.Kind == "ready");
        }

        await Client.SetPoolAsync(name, 1, Token);
        try
        {
            for (var deadline = DateTime.UtcNow.AddSeconds(60); (await Client.ListPoolsAsync(Token)).Single(p => p.Image == name).Ready < 1; await Task.Delay(100, Token))
            {
                Assert.True(DateTime.UtcNow < deadline, "The template's warm pool did not fill in 60 s.");
            }

            await using var claimed = await fixture.CreateSandboxAsync(new CreateSandboxRequest { Image = name });
            Assert.Equal(1, (await Client.ListPoolsAsync(Token)).Single(p => p.Image == name).Claims);
            Assert.Equal("served-by-template\n", (await claimed.ShAsync("curl -s http://127.0.0.1:8000/index.html")).Stdout);
        }
        finally
        {
            await Client.SetPoolAsync(name, 0, Token);
        }
    }

    [Fact]
    public async Task ReadyTemplate_WhoseStartCommandFails_LeavesNoSandbox()
    {
        var name = Name("broken");
        await BuildAsync(name, new() { ["Dockerfile"] = "FROM busybox\n" }, new ImageBuildOptions { StartCmd = "echo cannot start >&2; exit 3", ReadyCmd = "false" });

        var ex = await Assert.ThrowsAsync<CordonApiException>(() => Client.CreateSandboxAsync(new CreateSandboxRequest { Image = name }, Token));

        Assert.Equal(502, ex.Status);
        Assert.Contains("exit code 3", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cannot start", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(await Client.ListSandboxesAsync(cancellationToken: Token), s => s.Image == name);
    }

    [Fact]
    public async Task Context_SymlinksStayLinks_AndNeverReachTheHostsFiles()
    {
        var name = Name("links");
        using var context = new MemoryStream();
        await using (var writer = new TarWriter(context, TarEntryFormat.Pax, leaveOpen: true))
        {
            await AddFileAsync(writer, "Dockerfile", "FROM busybox\nCOPY . /ctx/\nCOPY shadow /copied-shadow\n");
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "shadow") { LinkName = "/etc/shadow" }, Token);
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, "up") { LinkName = "../../../../etc" }, Token);
        }

        context.Position = 0;
        var (_, image) = await FollowAsync(await Client.BuildImageFromContextAsync(name, context, cancellationToken: Token));

        Assert.Equal("ready", image.Status);
        await using var sandbox = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = name });
        var result = await sandbox.ShAsync("readlink /ctx/shadow; readlink /ctx/up; readlink /copied-shadow; cat /copied-shadow 2>&1 | head -c 200");
        Assert.StartsWith("/etc/shadow\n../../../../etc\n/etc/shadow\n", result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(File.ReadAllLines("/etc/shadow")[0], result.Stdout, StringComparison.Ordinal); // the host's root line
    }

    [Fact]
    public async Task BadInput_IsAClearClientError()
    {
        async Task ExpectAsync(HttpStatusCode status, string url, Stream? body, string contains)
        {
            using var content = body is null ? null : new StreamContent(body);
            using var response = await fixture.Server.Http.PostAsync(url, content, Token);
            var problem = await ProblemAssert.IsProblemAsync(response, status);
            Assert.Contains(contains, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        var name = Name("bad");
        await ExpectAsync(HttpStatusCode.BadRequest, $"/v1/images/{name}/build", Tar(new() { ["README"] = "x" }), "has no file 'Dockerfile'");
        await ExpectAsync(HttpStatusCode.BadRequest, $"/v1/images/{name}/build", Tar(new() { ["Dockerfile"] = "FROM busybox\nFROBNICATE x\n" }), "(line 2)");
        await ExpectAsync(HttpStatusCode.BadRequest, $"/v1/images/{name}/build", Tar(new() { ["Dockerfile"] = "RUN echo\n" }), "before the first FROM");
        await ExpectAsync(HttpStatusCode.BadRequest, $"/v1/images/{name}/build", Tar(new() { ["Dockerfile"] = "FROM busybox\nRUN <<EOF\necho\nEOF\n" }), "here-document");
        await ExpectAsync(HttpStatusCode.BadRequest, $"/v1/images/{name}/build", Tar(new() { ["Dockerfile"] = "FROM busybox\n", ["../escape"] = "x" }), "leaves it");
        await ExpectAsync(HttpStatusCode.BadRequest, $"/v1/images/{name}/build?target=nope", Tar(new() { ["Dockerfile"] = "FROM busybox AS one\n" }), "no stage named 'nope'");
        await ExpectAsync(HttpStatusCode.BadRequest, $"/v1/images/{name}/build?buildArg=novalue", Tar(new() { ["Dockerfile"] = "FROM busybox\n" }), "NAME=value");
        await ExpectAsync(HttpStatusCode.BadRequest, $"/v1/images/{name}/build", new MemoryStream(Encoding.UTF8.GetBytes("not a tar archive at all, just text that goes on for a while......................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................")), "not a tar archive");
        await ExpectAsync(HttpStatusCode.BadRequest, $"/v1/images/{name}/build", null, "context as the body");
        await ExpectAsync(HttpStatusCode.BadRequest, "/v1/images/Not_Valid/build", Tar(new() { ["Dockerfile"] = "FROM busybox\n" }), "is not valid");

        // The mark of a build's sandbox (removed when the server starts) is the server's to set, nobody else's.
        using (var marked = await fixture.Server.Http.PostAsync("/v1/sandboxes", new StringContent("{\"metadata\": {\"cordon.build\": \"x\"}}", Encoding.UTF8, "application/json"), Token))
        {
            await ProblemAssert.IsProblemAsync(marked, HttpStatusCode.BadRequest);
        }

        // A tenant may not rebuild the default image (the server's), nor take its name for one of its own.
        var (_, secret) = await fixture.Server.CreateKeyAsync("builder-" + Guid.NewGuid().ToString("N")[..6]);
        using var tenant = fixture.Server.HttpWith(secret);
        using (var forbidden = await tenant.PostAsync("/v1/images/default/build", null, Token))
        {
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }

        // Known only while it runs: FROM an image this server does not have.
        var (events, image) = await BuildAsync(name, new() { ["Dockerfile"] = "FROM registry.example/none:1\n" });
        Assert.Equal("failed", image.Status);
        Assert.Contains("no image of that name", events.Single(e => e.Type == "error").Message, StringComparison.Ordinal);
        Assert.Contains((await Client.ListImagesAsync(Token)), i => i.Name == name && i.Status == "failed");
    }

    [Fact]
    public async Task Cli_BuildsWithDockerignoreAndBuildArgs_AndFailsWithExitCodeOne()
    {
        var directory = TestPaths.NewTempDirectory("build-context");
        await File.WriteAllTextAsync(Path.Combine(directory, "Dockerfile"), "FROM busybox\nARG WHO\nCOPY . /ctx/\nRUN echo \"built for $WHO\" > /ctx/who\n", Token);
        await File.WriteAllTextAsync(Path.Combine(directory, "kept.txt"), "kept\n", Token);
        Directory.CreateDirectory(Path.Combine(directory, "node_modules", "dep"));
        await File.WriteAllTextAsync(Path.Combine(directory, "node_modules", "dep", "index.js"), "x\n", Token);
        await File.WriteAllTextAsync(Path.Combine(directory, "secret.env"), "TOKEN=1\n", Token);
        await File.WriteAllTextAsync(Path.Combine(directory, ".dockerignore"), "node_modules\n*.env\n", Token);
        var name = Name("cli");

        var (exit, stdout, stderr) = await CordonCli.RunAsync(fixture.Server, "", "image", "build", "-t", name, "--build-arg", "WHO=tests", directory);

        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("#4/4 [0] RUN echo", stdout, StringComparison.Ordinal);
        Assert.Contains($"Built '{name}'", stdout, StringComparison.Ordinal);
        await using (var sandbox = await fixture.Server.CreateSandboxAsync(new CreateSandboxRequest { Image = name }))
        {
            Assert.Equal(".dockerignore\nDockerfile\nkept.txt\nwho\nbuilt for tests\n", (await sandbox.ShAsync("ls -A /ctx; cat /ctx/who")).Stdout);
        }

        var outside = Path.Combine(TestPaths.NewTempDirectory("build-file"), "Failing.Dockerfile");
        await File.WriteAllTextAsync(outside, "FROM busybox\nRUN echo about to fail; exit 4\n", Token);
        var failed = await CordonCli.RunAsync(fixture.Server, "", "image", "build", "-t", Name("cli-fails"), "-f", outside, directory);

        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("failed with exit code 4", failed.Stderr, StringComparison.Ordinal);
        Assert.Contains("| about to fail", failed.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task E2bUploadLinks_WorkForTheirHashAndKeyOnly()
    {
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var other = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        using var link = System.Text.Json.JsonDocument.Parse(await fixture.Server.Http.GetStringAsync($"/templates/t/files/{hash}", Token));
        Assert.False(link.RootElement.GetProperty("present").GetBoolean());
        var url = new Uri(link.RootElement.GetProperty("url").GetString()!);
        using var anonymous = new HttpClient(); // the SDK sends no API key to the link

        async Task<HttpStatusCode> PutAsync(string pathAndQuery)
        {
            using var response = await anonymous.PutAsync(new Uri(fixture.Server.Address, pathAndQuery), new StreamContent(Tar(new() { ["f"] = "x" })), Token);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await PutAsync(url.PathAndQuery.Replace(hash, other, StringComparison.Ordinal))); // another hash
        Assert.Equal(HttpStatusCode.Unauthorized, await PutAsync(url.PathAndQuery[..^4] + "0000")); // a forged signature
        Assert.Equal(HttpStatusCode.Unauthorized, await PutAsync(url.PathAndQuery.Replace("expires=", "expires=9", StringComparison.Ordinal))); // a later expiry
        Assert.Equal(HttpStatusCode.OK, await PutAsync(url.PathAndQuery));
        using var present = System.Text.Json.JsonDocument.Parse(await fixture.Server.Http.GetStringAsync($"/templates/t/files/{hash}", Token));
        Assert.True(present.RootElement.GetProperty("present").GetBoolean());

        // Another key's link for the same hash is its own: one key's signature does not work as another's.
        var (tenantId, secret) = await fixture.Server.CreateKeyAsync("e2b-tenant-" + Guid.NewGuid().ToString("N")[..6]);
        using var tenant = fixture.Server.HttpWith(secret);
        using var tenantLink = System.Text.Json.JsonDocument.Parse(await tenant.GetStringAsync($"/templates/t/files/{other}", Token));
        var tenantUrl = tenantLink.RootElement.GetProperty("url").GetString()!;
        Assert.Contains(Uri.EscapeDataString(tenantId), tenantUrl, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, await PutAsync(new Uri(tenantUrl).PathAndQuery.Replace(Uri.EscapeDataString(tenantId), "admin", StringComparison.Ordinal)));

        // Hashes are the client's claim: what one key uploaded under a hash is never another key's files of that hash.
        using var notShared = System.Text.Json.JsonDocument.Parse(await tenant.GetStringAsync($"/templates/t/files/{hash}", Token));
        Assert.False(notShared.RootElement.GetProperty("present").GetBoolean());
    }

    [Fact]
    public async Task TenantImages_AreTheirOwn_AndAnotherTenantsIsNowhere()
    {
        var (aliceId, aliceSecret) = await fixture.Server.CreateKeyAsync("alice-" + Guid.NewGuid().ToString("N")[..6]);
        var (bobId, bobSecret) = await fixture.Server.CreateKeyAsync("bob-" + Guid.NewGuid().ToString("N")[..6]);
        using var alice = new CordonClient(fixture.Server.Address, aliceSecret);
        using var bob = new CordonClient(fixture.Server.Address, bobSecret);

        // The same name, two tenants, two images.
        foreach (var (client, who) in new[] { (alice, "alice"), (bob, "bob") })
        {
            await using var context = Tar(new() { ["Dockerfile"] = $"FROM busybox\nRUN echo {who} > /who\n" });
            var started = await client.BuildImageFromContextAsync("app", context, cancellationToken: Token);
            Assert.Equal("app", started.Name);
            await foreach (var e in client.FollowBuildAsync("app", 0, Token))
            {
                Assert.NotEqual("error", e.Type);
            }
        }

        foreach (var (client, who) in new[] { (alice, "alice"), (bob, "bob") })
        {
            var listed = await client.ListImagesAsync(Token);
            Assert.Single(listed, i => i.Name == "app");
            Assert.DoesNotContain(listed, i => i.Name.Contains('/', StringComparison.Ordinal)); // no other tenant's image
            Assert.Contains(listed, i => i.Name == ServerFixture.TestImage); // the server's images are everyone's
            var sandbox = await client.CreateSandboxAsync(new CreateSandboxRequest { Image = "app", TimeoutSeconds = 120 }, Token);
            Assert.Equal("app", sandbox.Image);
            Assert.Equal(who + "\n", (await client.ExecAsync(sandbox.Id, ExecRequestBody.FromShell("cat /who"), Token)).Stdout);
            await client.DeleteSandboxAsync(sandbox.Id, Token);
        }

        var all = await Client.ListImagesAsync(Token);
        Assert.Contains(all, i => i.Name == $"{aliceId}/app");
        Assert.Contains(all, i => i.Name == $"{bobId}/app");

        // Bob cannot reach Alice's image by any name: not to start from, not to build from, not to delete.
        var create = await Assert.ThrowsAsync<CordonApiException>(() => bob.CreateSandboxAsync(new CreateSandboxRequest { Image = $"{aliceId}/app" }, Token));
        var madeUp = await Assert.ThrowsAsync<CordonApiException>(() => bob.CreateSandboxAsync(new CreateSandboxRequest { Image = "nobody-at-all/app" }, Token));
        Assert.Equal((madeUp.Status, madeUp.Message.Replace("nobody-at-all", aliceId, StringComparison.Ordinal)), (create.Status, create.Message)); // as if it did not exist
        await using (var context = Tar(new() { ["Dockerfile"] = $"FROM {aliceId}/app\n" }))
        {
            await bob.BuildImageFromContextAsync("stolen", context, cancellationToken: Token);
            var events = new List<BuildEvent>();
            await foreach (var e in bob.FollowBuildAsync("stolen", 0, Token))
            {
                events.Add(e);
            }

            Assert.Equal("failed", events[^1].Status);
            Assert.Contains("no image of that name", events.Single(e => e.Type == "error").Message, StringComparison.Ordinal);
        }

        Assert.Equal(403, (await Assert.ThrowsAsync<CordonApiException>(() => bob.DeleteImageAsync(ServerFixture.TestImage, Token))).Status);
        await bob.DeleteImageAsync("app", Token);
        Assert.Equal(404, (await Assert.ThrowsAsync<CordonApiException>(() => bob.GetImageAsync("app", Token))).Status);
        Assert.Equal("ready", (await alice.GetImageAsync("app", Token)).Status);
        await alice.DeleteImageAsync("app", Token);

        // A tenant cannot take the default image's name for one of its own (it would shadow the server's for it).
        using var aliceHttp = fixture.Server.HttpWith(aliceSecret);
        using var reserved = await aliceHttp.PostAsync("/v1/images?name=default", new StreamContent(Tar(new() { ["etc/hostname"] = "x" })), Token);
        await ProblemAssert.IsProblemAsync(reserved, HttpStatusCode.Conflict);
    }

    private static string Name(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    private async Task<(List<BuildEvent> Events, ImageInfo Image)> BuildAsync(string name, Dictionary<string, string> files, ImageBuildOptions? options = null)
    {
        await using var context = Tar(files);
        return await FollowAsync(await Client.BuildImageFromContextAsync(name, context, options, Token));
    }

    private async Task<(List<BuildEvent> Events, ImageInfo Image)> FollowAsync(ImageInfo started)
    {
        var events = new List<BuildEvent>();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Token);
        limit.CancelAfter(TimeSpan.FromMinutes(5));
        await foreach (var e in Client.FollowBuildAsync(started.Name, 0, limit.Token))
        {
            events.Add(e);
        }

        Assert.Equal("done", events[^1].Type);
        Assert.Equal(Enumerable.Range(0, events.Count).Select(i => (long)i), events.Select(e => e.Offset));
        return (events, await Client.GetImageAsync(started.Name, Token));
    }

    private static MemoryStream Tar(Dictionary<string, string> files)
    {
        var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (path, text) in files)
            {
                AddFileAsync(writer, path, text).GetAwaiter().GetResult();
            }
        }

        stream.Position = 0;
        return stream;
    }

    private static async Task AddFileAsync(TarWriter writer, string path, string text)
    {
        var entry = new PaxTarEntry(TarEntryType.RegularFile, path) { Mode = (UnixFileMode)0b110_100_100, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) };
        await writer.WriteEntryAsync(entry);
    }
}
