using System.Text;

namespace Cordon.Server.Errors;

/// <summary>What every interface needs to know about an <see cref="ErrorCode"/>: its wire name.</summary>
public static class ErrorCodes
{
    private static readonly string[] Names = [.. Enum.GetValues<ErrorCode>().Select(c => SnakeCase(c.ToString()))];

    /// <summary>The code as it appears on the wire (<c>sandbox_not_found</c>): the snake_case of its name.</summary>
    public static string Name(ErrorCode code) => Names[(int)code];

    private static string SnakeCase(string name)
    {
        var text = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                text.Append('_');
            }

            text.Append(char.ToLowerInvariant(name[i]));
        }

        return text.ToString();
    }
}
