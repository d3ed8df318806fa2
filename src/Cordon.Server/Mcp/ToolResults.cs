using System.Collections;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using ModelContextProtocol.Protocol;

namespace Cordon.Server.Mcp;

/// <summary>How tool results are shaped: readable text for the model, the same facts as structured content,
/// errors as tool errors (<c>isError</c>) whose message says what to do next.</summary>
internal static class ToolResults
{
    /// <summary>camelCase like the REST API; used for the tools' schemas.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>For structured content, which lands in a model's context window: nulls, empty strings and empty
    /// collections are left out, except where the output schema requires the property.</summary>
    private static readonly JsonSerializerOptions Structured = new(JsonSerializerDefaults.Web)
    {
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { OmitEmpty } },
    };

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
        StructuredContent = JsonSerializer.SerializeToElement(structured, Structured),
    };

    public static CallToolResult Error(string message) => new()
    {
        Content = [new TextContentBlock { Text = message }],
        IsError = true,
    };

    private static void OmitEmpty(JsonTypeInfo type)
    {
        // Required members and constructor parameters are required by the output schema too: they always appear.
        foreach (var property in type.Properties.Where(p => !p.IsRequired && p.AssociatedParameter is null))
        {
            property.ShouldSerialize = (_, value) => value switch
            {
                null => false,
                string { Length: 0 } => false,
                ICollection { Count: 0 } => false,
                _ => true,
            };
        }
    }
}
