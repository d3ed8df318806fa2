using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The built <c>cordon</c> command line against the live server.</summary>
public sealed class CliTests(ServerAssemblyFixture fixture)
{
    private ServerFixture Server => fixture.Server;

    private Task<(int ExitCode, string Stdout, string Stderr)> CordonAsync(params string[] args) => CordonWithInputAsync("", args);

    private Task<(int ExitCode, string Stdout, string Stderr)> CordonWithInputAsync(string input, params string[] args)
        => CordonCli.RunAsync(Server, input, args);

    [Fact]
    public async Task Run_OneShot_StreamsOutputAndReturnsExitCode()
    {
        var (exit, stdout, _) = await CordonAsync("run", "--image", "busybox", "--", "sh", "-c", "echo hi from cli; exit 3");

        Assert.Equal(3, exit);
        Assert.Equal("hi from cli\n", stdout);
    }

    [Fact]
    public async Task SandboxCreateExecLsRm_RoundTrip()
    {
        var (createExit, id, _) = await CordonAsync("sandbox", "create", "--image", "busybox", "--env", "WHO=cli");
        id = id.Trim();
        var (execExit, execOut, _) = await CordonAsync("sandbox", "exec", id, "--", "sh", "-c", "echo $WHO");
        var (lsExit, ls, lsError) = await CordonAsync("sandbox", "ls");
        var (rmExit, _, _) = await CordonAsync("sandbox", "rm", id);

        Assert.Equal(0, createExit);
        Assert.Equal(0, execExit);
        Assert.Equal("cli\n", execOut);
        Assert.True(lsExit == 0, $"sandbox ls exited {lsExit}: {lsError}");
        Assert.Contains(id, ls, StringComparison.Ordinal);
        Assert.Equal(0, rmExit);
        Assert.Equal("ended", (await Server.Client.GetSandboxAsync(id)).State);
    }

    /// <summary>--allow alone means only that; `sandbox network` shows the policy and replaces it; a bad rule is
    /// the server's 400, told on stderr.</summary>
    [Fact]
    public async Task NetworkFlags_SetAndChangeThePolicy()
    {
        TestInternet.EnsureUp();
        var (createExit, id, createError) = await CordonAsync("sandbox", "create", "--image", "busybox", "--allow", TestInternet.PublicHost + ":80");
        id = id.Trim();
        Assert.True(createExit == 0, createError);
        var (_, shown, _) = await CordonAsync("sandbox", "network", id);
        var (reached, _, _) = await CordonAsync("sandbox", "exec", id, "--", "sh", "-c", $"printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 10 {TestInternet.PublicHost} 80 | grep -c hello");
        var (changeExit, changed, _) = await CordonAsync("sandbox", "network", id, "--network", "none");
        var (refused, _, _) = await CordonAsync("sandbox", "exec", id, "--", "sh", "-c", $"nc -w 10 {TestInternet.PublicHost} 80 </dev/null");
        var (badExit, _, badError) = await CordonAsync("sandbox", "network", id, "--allow", "not a rule!");
        var (wrongExit, _, wrongError) = await CordonAsync("sandbox", "network", id, "--network", "sometimes");
        await CordonAsync("sandbox", "rm", id);

        Assert.Contains($"internet: no\nallow:    {TestInternet.PublicHost}:80", shown, StringComparison.Ordinal);
        Assert.Equal(0, reached);
        Assert.Equal(0, changeExit);
        Assert.Contains("allow:    \n", changed, StringComparison.Ordinal);
        Assert.NotEqual(0, refused);
        Assert.Equal(1, badExit);
        Assert.Contains("not a rule!", badError, StringComparison.Ordinal);
        Assert.NotEqual(0, wrongExit);
        Assert.Contains("internet or none", wrongError, StringComparison.Ordinal);
    }

    /// <summary>A secret's value goes in on standard input, never on the command line; a sandbox gets its placeholder.</summary>
    [Fact]
    public async Task SecretCommands_SetListUseAndRemove()
    {
        var name = "cli-" + Guid.NewGuid().ToString("N")[..8];
        var value = "v" + Guid.NewGuid().ToString("N");
        var (setExit, set, setError) = await CordonWithInputAsync(value + "\n", "secret", "set", name, "--host", "api.example.com");
        var (againExit, again, _) = await CordonWithInputAsync(value + "2\n", "secret", "set", name);
        var (_, listed, _) = await CordonAsync("secret", "ls");
        var (createExit, id, createError) = await CordonAsync("sandbox", "create", "--image", "busybox", "--secret", "TOKEN=" + name);
        var (_, held, _) = await CordonAsync("sandbox", "exec", id.Trim(), "--", "sh", "-c", "echo $TOKEN");
        await CordonAsync("sandbox", "rm", id.Trim());
        var (rmExit, _, _) = await CordonAsync("secret", "rm", name);
        var (goneExit, _, goneError) = await CordonAsync("secret", "rm", name);

        Assert.True(setExit == 0, setError);
        Assert.Equal($"{name} version 1; hosts: api.example.com\n", set);
        Assert.Equal(0, againExit);
        Assert.StartsWith($"{name} version 2; hosts: api.example.com", again, StringComparison.Ordinal);
        Assert.Contains(name, listed, StringComparison.Ordinal);
        Assert.DoesNotContain(value, listed + set + again, StringComparison.Ordinal);
        Assert.True(createExit == 0, createError);
        Assert.StartsWith($"cordon-secret-{name}-", held, StringComparison.Ordinal);
        Assert.Equal(0, rmExit);
        Assert.Equal(1, goneExit);
        Assert.Contains("No secret", goneError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ImageLs_ListsTestImage()
    {
        var (exit, stdout, _) = await CordonAsync("image", "ls");

        Assert.Equal(0, exit);
        Assert.Contains("busybox", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ImageImport_Directory_BecomesUsableImage()
    {
        var dir = TestPaths.NewTempDirectory("rootfs");
        try
        {
            await using (var tarball = BusyboxImage.CreateTarball())
            {
                await System.Formats.Tar.TarFile.ExtractToDirectoryAsync(tarball, dir, overwriteFiles: true);
            }

            var (exit, stdout, stderr) = await CordonAsync("image", "import", "cli-import", dir);
            var (runExit, runOut, _) = await CordonAsync("run", "--image", "cli-import", "--", "cat", "/etc/hostname");

            Assert.True(exit == 0, stderr);
            Assert.Contains("cli-import", stdout, StringComparison.Ordinal);
            Assert.Equal(0, runExit);
            Assert.Equal("busybox\n", runOut);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task UnknownSandbox_ErrorLineAndExitCode1()
    {
        var (exit, _, stderr) = await CordonAsync("sandbox", "exec", "aaaaaaaaaaaaaaaaaaaa", "--", "true");

        Assert.Equal(1, exit);
        Assert.Contains("sandbox_not_found", stderr, StringComparison.Ordinal);
    }
}
