using System.Text.Json;

namespace Cordon.Server.Errors;

/// <summary>What is wrong with a JSON request body, in the words of JSON and the API rather than the server's: where
/// (the path of the value) and where the fields' types are described. System.Text.Json names a .NET type instead —
/// the field's own or, for a number or a string, the object holding it ("could not be converted to
/// Cordon.Protocol.Api.CreateSandboxRequest" for a string in <c>timeoutSeconds</c>) — which tells an agent nothing it
/// can send.</summary>
internal static class JsonFaults
{
    /// <summary>The fault, without a trailing period.</summary>
    public static string Describe(JsonException ex)
    {
        var at = string.IsNullOrEmpty(ex.Path) ? "$" : ex.Path;
        if (ex.Message.Contains("could not be converted to", StringComparison.Ordinal))
        {
            return $"the value at {at} is not of the type that field takes (GET /openapi/v1.json gives each field's type)";
        }

        // A syntax error: System.Text.Json's own message says what it met and where (line and byte).
        return ex.Message.TrimEnd('.');
    }
}
