using System.Text.RegularExpressions;
using Cordon.Protocol;
using Cordon.Server.Errors;

namespace Cordon.Server.Sandboxes;

/// <summary>What every request is checked against before anything is done for it.</summary>
public sealed partial class SandboxService
{
    private static string ValidPath(string? path)
        => SandboxPaths.Validate(path) is { } problem ? throw CordonException.Invalid(problem) : SandboxPaths.Normalize(path!);

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw CordonException.Invalid(message);
        }
    }

    private static void ValidateEnvironment(IReadOnlyDictionary<string, string>? env, string field)
    {
        if (env is null)
        {
            return;
        }

        Require(env.Count <= 512, $"{field} has {env.Count} variables; at most 512 are allowed.");
        foreach (var (key, value) in env)
        {
            Require(EnvNameRegex().IsMatch(key), $"{field}: '{key}' is not a valid variable name (letters, digits and '_', not starting with a digit).");
            Require(!key.StartsWith("CORDON_AGENT_", StringComparison.Ordinal), $"{field}: names starting with CORDON_AGENT_ are reserved.");
            Require(value is not null && !value.Contains('\0', StringComparison.Ordinal), $"{field}: the value of '{key}' contains a NUL character.");
            Require(value!.Length <= 128 * 1024, $"{field}: the value of '{key}' is longer than 128 KiB.");
        }
    }

    private static void ValidateMetadata(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is null)
        {
            return;
        }

        Require(metadata.Count <= 64, "metadata may hold at most 64 entries.");
        foreach (var (key, value) in metadata)
        {
            Require(key.Length is > 0 and <= 128, "metadata keys must be 1-128 characters.");
            Require(key != BuildMetadata, $"the metadata key '{BuildMetadata}' marks the sandboxes of image builds and is the server's own to set.");
            Require(value is not null && value.Length <= 1024, $"metadata value of '{key}' must be at most 1024 characters.");
        }
    }

    private static void ValidateUser(string? user)
    {
        if (user is not null)
        {
            Require(user.Length is > 0 and < 65 && !user.Contains('\0', StringComparison.Ordinal), "user must be a user name or uid inside the sandbox.");
        }
    }

    private static bool IsValidId(string id) => id.Length == 20 && id.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c));

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvNameRegex();
}
