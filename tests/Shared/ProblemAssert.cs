using System.Net;
using System.Text.Json;
using Xunit;

namespace Cordon.Testing;

/// <summary>Checks that an error answer is RFC 9457 problem details with a code and an actionable message.</summary>
public static class ProblemAssert
{
    public static async Task<JsonElement> IsProblemAsync(HttpResponseMessage response, HttpStatusCode status, string? code = null)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        if (code is not null)
        {
            Assert.Equal(code, problem.GetProperty("code").GetString());
        }

        // Messages may reach an agent: never a stack trace or a host path of the server.
        Assert.DoesNotContain("   at ", body, StringComparison.Ordinal);
        Assert.DoesNotContain("/var/lib/cordon", body, StringComparison.Ordinal);
        Assert.DoesNotContain("/tmp/cordon-test", body, StringComparison.Ordinal);
        return problem;
    }
}
