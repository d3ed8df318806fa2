using System.ComponentModel;
using System.Text;
using System.Text.Json;
using Cordon.Protocol.Api;
using Cordon.Server.Sandboxes;
using Cordon.Server.Shapes;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Cordon.Server.Mcp;

/// <summary>The MCP tool for stateful code: a notebook cell whose charts come back as images.</summary>
[McpServerToolType]
public sealed class CodeTools(SandboxService sandboxes, ToolCalls calls)
{
    [McpServerTool(Name = "run_code", Title = "Run code", Destructive = true, Idempotent = false, ReadOnly = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(CodeRunResult))]
    [Description("Run code in a stateful interpreter, like a notebook cell: variables, imports and functions survive between calls. Returns printed output, the value of the last expression, errors with traceback, and charts (matplotlib figures appear as images without savefig). Languages: python (IPython with numpy, pandas, matplotlib; !shell and %magics work), javascript, typescript, bash.")]
    public Task<CallToolResult> RunCodeAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("The code to run.")] string code,
        [Description("python (default), javascript, typescript or bash.")] string? language = null,
        [Description("A context id (from the REST API) to run in; the language's default context when left out.")] string? contextId = null,
        [Description("Interrupt the code after this many seconds (default 60); the interpreter keeps its state.")] int? timeoutSeconds = null,
        [Description(ToolCalls.SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            var run = await sandboxes.RunCodeAsync(caller, sandbox.Id, new CodeSpec { Code = code, Language = language, ContextId = contextId, TimeoutSeconds = timeoutSeconds }, cancellationToken);
            return CodeResult(run);
        });

    /// <summary>The run as the model reads it: its output, each result's text, figures as image content; the
    /// structured copy says where the images were instead of repeating them.</summary>
    private CallToolResult CodeResult(CodeRun run)
    {
        var text = new StringBuilder();
        var images = new List<ContentBlock>();
        if (run.Stdout.Length > 0)
        {
            text.Append(run.Stdout);
        }

        if (run.Stderr.Length > 0)
        {
            text.Append("\n--- stderr ---\n").Append(run.Stderr);
        }

        foreach (var r in run.Results)
        {
            var data = r.Data ?? [];
            foreach (var mime in (string[])["image/png", "image/jpeg"])
            {
                if (data.TryGetValue(mime, out var image) && image.ValueKind == JsonValueKind.String)
                {
                    images.Add(new ImageContentBlock { Data = Encoding.ASCII.GetBytes(image.GetString()!), MimeType = mime });
                    text.Append($"\n[{(r.IsMainResult == true ? "result" : "figure")}: {mime}, shown as an image]");
                    break;
                }
            }

            if (data.TryGetValue("text/plain", out var plain) && !data.ContainsKey("image/png") && !data.ContainsKey("image/jpeg"))
            {
                text.Append(r.IsMainResult == true ? "\nOut: " : "\n").Append(plain.GetString());
            }
        }

        if (run.Error is { } error)
        {
            text.Append($"\n{error.Name}: {error.Value}");
            if (error.Traceback.Count > 0)
            {
                text.Append('\n').Append(string.Join('\n', error.Traceback));
            }

            text.Append(run.Status switch
            {
                CodeRunStatus.Timeout => "\nThe code ran past its timeout and was interrupted; the interpreter kept its state. Give timeoutSeconds more, or start long work with run_command background=true.",
                CodeRunStatus.Died => "\nThe interpreter died; its state is lost. Run code again to start a fresh one.",
                _ => "",
            });
        }

        var (capped, _) = OutputCap.Cap(text.ToString().Trim(), calls.MaxChars, "print less, or write the output to a file and read parts of it with read_file");
        var structured = run.ToResult() with
        {
            Results = [.. run.Results.Select(r => r with { Data = r.Data?.ToDictionary(d => d.Key, d => d.Key.StartsWith("image/", StringComparison.Ordinal) && d.Key != "image/svg+xml" ? JsonSerializer.SerializeToElement("(image content)") : d.Value) })],
        };
        var call = ToolResults.Ok(capped.Length == 0 ? $"(no output; status {WireNames.Of(run.Status)})" : capped, structured, [.. images]);
        call.IsError = run.Status is CodeRunStatus.Error or CodeRunStatus.Timeout or CodeRunStatus.Died ? true : null;
        return call;
    }
}
