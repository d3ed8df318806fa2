using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>Test classes that need the default image share one server that prepared it.</summary>
[CollectionDefinition(Name)]
public sealed class DefaultImageCollection : ICollectionFixture<DefaultImageServer>
{
    public const string Name = "default image";
}

[Collection(DefaultImageCollection.Name)]
public sealed class DefaultImageTests(DefaultImageServer fixture)
{
    [Fact]
    public async Task DefaultImage_Prepared_RunsPythonDataStackNodeAndGit()
    {
        await using var sandbox = await fixture.CreateSandboxAsync();
        var result = await sandbox.ExecAsync(ExecRequestBody.FromShell(
            "python3 -c 'import numpy, pandas, matplotlib, ipykernel; print(\"py\", numpy.__version__ > \"1\")' && " +
            "node -e 'console.log(\"node\", 6 * 7, require(\"typescript\").version > \"4\")' && npm --version >/dev/null && git --version >/dev/null && " +
            "curl --version >/dev/null && id -u user && echo MPLBACKEND=$MPLBACKEND") with
        { TimeoutSeconds = 120 });

        Assert.Equal("default", sandbox.Info.Image);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal("py True\nnode 42 true\n1000\nMPLBACKEND=Agg\n", result.Stdout);
    }
}
