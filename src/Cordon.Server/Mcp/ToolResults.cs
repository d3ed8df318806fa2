using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace Cordon.Server.Mcp;

/// <summary>How tool results are shaped: readable text for the model, the same facts as structured content,
/// errors as tool errors (<c>isError</c>) whose message says what to do next.</summary>
internal static class ToolResults
{
    /// <summary>camelCase like the REST API. Nulls are written: an output schema lists every property as required.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The SDK answers an exception in a tool (arguments that do not bind, or a bug) with a bare
    /// "An error occurred invoking"; a model needs to know what to check.</summary>
    public static CallToolResult ExplainGenericFailure(CallToolResult result, string? tool)
    {
        if (result.IsError == true && result.Content is [TextContentBlock { Text: var text }] && text.StartsWith("An error occurred invoking", StringComparison.Ordinal))
        {
            return Error($"The call to '{tool}' failed before it ran: most likely an argument has the wrong type or a required one is missing. " +
                "Check the arguments against the tool's input schema (tools/list) and call again. If they match, this is a server error; the server log has the details.");
        }

        return result;
    }

    public static CallToolResult Ok<T>(string text, T structured, params ContentBlock[] more) => new()
    {
        Content = [new TextContentBlock { Text = text }, .. more],
        StructuredContent = JsonSerializer.SerializeToElement(structured, Json),
    };

    public static CallToolResult Error(string message) => new()
    {
        Content = [new TextContentBlock { Text = message }],
        IsError = true,
    };

    /// <summary>Keeps text within <paramref name="max"/> characters: the start and the end survive, and the cut
    /// says how much was left out and how to get it.</summary>
    /// <param name="howToReadAll">Appended to the marker, e.g. which tool and cursor pages the rest.</param>
    public static (string Text, bool Truncated) Cap(string text, int max, string howToReadAll)
    {
        if (text.Length <= max)
        {
            return (text, false);
        }

        var head = max / 2;
        var tail = max - head;
        var omitted = text.Length - head - tail;
        return ($"{text[..head]}\n[… {omitted} characters left out; {howToReadAll} …]\n{text[^tail..]}", true);
    }
}
