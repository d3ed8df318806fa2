using System.Text.Json;
using System.Text.Json.Nodes;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The checked-in OpenAPI document is the served one: an API change shows up as a diff in review.</summary>
public sealed class ContractTests(ServerAssemblyFixture fixture)
{
    [Fact]
    public async Task OpenApi_Served_MatchesCheckedInDocument()
    {
        var served = JsonNode.Parse(await fixture.Server.Http.GetStringAsync("/openapi/v1.json"))!;
        var pretty = served.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
        var file = Path.Combine(TestPaths.RepositoryRoot, "docs", "api", "openapi.json");
        if (Environment.GetEnvironmentVariable("CORDON_UPDATE_CONTRACTS") == "1")
        {
            await File.WriteAllTextAsync(file, pretty);
        }

        Assert.True(File.Exists(file), "docs/api/openapi.json is missing: run the tests once with CORDON_UPDATE_CONTRACTS=1.");
        Assert.True(pretty == await File.ReadAllTextAsync(file), "The served OpenAPI document differs from docs/api/openapi.json: if the change is intended, run the tests with CORDON_UPDATE_CONTRACTS=1 and commit the file.");
    }
}
