using System.ComponentModel;
using System.Globalization;
using System.Text;
using Cordon.Protocol;
using Cordon.Protocol.Api;
using Cordon.Server.Auth;
using Cordon.Server.Sandboxes;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Cordon.Server.Mcp;

/// <summary>MCP tools for files: read (text with line numbers, images as images), write, edit, list, make a
/// directory, remove, move.</summary>
[McpServerToolType]
public sealed class FileTools(SandboxService sandboxes, ToolCalls calls)
{
    /// <summary>Largest file edit_file reads and rewrites.</summary>
    private const long MaxEditBytes = 8L << 20;

    /// <summary>Most bytes read_file reads through to page a text file by lines.</summary>
    private const long MaxTextBytes = 64L << 20;

    /// <summary>Largest image read_file returns as an image.</summary>
    private const long MaxImageBytes = 8L << 20;

    [McpServerTool(Name = "read_file", Title = "Read a file", ReadOnly = true, Idempotent = true, Destructive = false, OpenWorld = false)]
    [Description("Read a file from the sandbox. Text comes with line numbers; page long files with offset and limit (lines). Images (png, jpeg, gif, webp) come back as images. Other binary files: encoding=base64.")]
    public Task<CallToolResult> ReadFileAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute path, e.g. /home/user/app.py.")] string path,
        [Description("First line to return, from 1 (default 1).")] int offset = 1,
        [Description("Most lines to return (default 2000).")] int limit = 2000,
        [Description("text (default) or base64 (the raw bytes, for binary files).")] string encoding = "text",
        [Description(ToolCalls.SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            var stat = await sandboxes.StatFileAsync(caller, sandbox.Id, path, user: null, cancellationToken);
            if (stat.Type == "dir")
            {
                return ToolResults.Error($"{path} is a directory: use list_files to see what is in it.");
            }

            var imageType = ImageType(path);
            if (encoding != "base64" && imageType is null)
            {
                return await ReadLinesAsync(caller, sandbox.Id, path, offset, limit, cancellationToken);
            }

            var cap = imageType is not null && encoding != "base64" ? MaxImageBytes : calls.MaxChars * 3L / 4;
            if (stat.Size > cap || await ReadAtMostAsync(caller, sandbox.Id, path, cap, cancellationToken) is not { } bytes)
            {
                return ToolResults.Error($"{path} holds more than {cap} bytes, more than one tool result should carry. Split it in the sandbox (split -b, head -c) or process it there with run_command.");
            }

            return imageType is not null && encoding != "base64"
                ? new CallToolResult
                {
                    Content = [new TextContentBlock { Text = $"{path}: {imageType}, {bytes.Length} bytes" }, ImageContentBlock.FromBytes(bytes, imageType)],
                }
                : new CallToolResult { Content = [new TextContentBlock { Text = Convert.ToBase64String(bytes) }] };
        });

    [McpServerTool(Name = "write_file", Title = "Write a file", Destructive = true, Idempotent = true, ReadOnly = false, OpenWorld = false)]
    [Description("Create or replace a file in the sandbox (parent directories are created). Text as is, or binary as base64 with encoding=base64.")]
    public Task<CallToolResult> WriteFileAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute path, e.g. /home/user/app.py.")] string path,
        [Description("The file's content.")] string content,
        [Description("text (default) or base64.")] string encoding = "text",
        [Description(ToolCalls.SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            byte[] bytes;
            try
            {
                bytes = encoding == "base64" ? Convert.FromBase64String(content) : Encoding.UTF8.GetBytes(content);
            }
            catch (FormatException)
            {
                return ToolResults.Error("content is not valid base64; send text with encoding=text, or fix the base64.");
            }

            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            var entry = await WriteAsync(caller, sandbox.Id, path, bytes, cancellationToken);
            return ToolResults.Ok($"Wrote {entry.Size} bytes to {entry.Path}.", entry);
        });

    [McpServerTool(Name = "edit_file", Title = "Edit a file", Destructive = true, Idempotent = false, ReadOnly = false, OpenWorld = false)]
    [Description("Replace exact text in a text file: oldText must appear exactly once (or set replaceAll). Include enough surrounding lines to make it unique; whitespace and indentation must match.")]
    public Task<CallToolResult> EditFileAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute path of the file.")] string path,
        [Description("The exact text to replace.")] string oldText,
        [Description("The text to put in its place.")] string newText,
        [Description("Replace every occurrence instead of requiring exactly one.")] bool replaceAll = false,
        [Description(ToolCalls.SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            if (oldText.Length == 0)
            {
                return ToolResults.Error("oldText is empty: give the exact text to replace (to create a file, use write_file).");
            }

            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            if (await ReadAtMostAsync(caller, sandbox.Id, path, MaxEditBytes, cancellationToken) is not { } bytes)
            {
                return ToolResults.Error($"{path} is larger than {MaxEditBytes >> 20} MiB, more than edit_file edits: change it with run_command (sed, or a script).");
            }

            var text = Encoding.UTF8.GetString(bytes);
            var count = Occurrences(text, oldText);
            if (count == 0)
            {
                return ToolResults.Error($"oldText was not found in {path}. Read the file (read_file) and copy the text exactly, including whitespace.");
            }

            if (count > 1 && !replaceAll)
            {
                return ToolResults.Error($"oldText appears {count} times in {path}. Include more surrounding text to make it unique, or set replaceAll=true.");
            }

            var updated = text.Replace(oldText, newText, StringComparison.Ordinal);
            await WriteAsync(caller, sandbox.Id, path, Encoding.UTF8.GetBytes(updated), cancellationToken);
            return ToolResults.Ok($"Replaced {count} occurrence{(count == 1 ? "" : "s")} in {path}.", new { path, replacements = count });
        });

    [McpServerTool(Name = "list_files", Title = "List files", ReadOnly = true, Idempotent = true, Destructive = false, OpenWorld = false, UseStructuredContent = true, OutputSchemaType = typeof(FileListing))]
    [Description("List a directory in the sandbox: names, types (file, directory, symlink) and sizes; depth > 1 descends into subdirectories.")]
    public Task<CallToolResult> ListFilesAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute directory path (default: the home directory of the user commands run as, /root in the default image).")] string? path = null,
        [Description("How many levels to descend (1 = just this directory, at most 5).")] int depth = 1,
        [Description(ToolCalls.SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            path ??= SandboxUsers.HomeOf(sandbox.DefaultUser);
            var entries = await sandboxes.ListFilesAsync(caller, sandbox.Id, path, Math.Clamp(depth, 1, 5), user: null, cancellationToken);
            var lines = entries.Select(e => $"{(e.Type == "dir" ? "d" : e.Type == "symlink" ? "l" : "-")} {e.Size,12}  {e.Path}{(e.Type == "dir" ? "/" : "")}");
            var (text, _) = OutputCap.Cap(entries.Count == 0 ? $"{path} is empty." : string.Join('\n', lines), calls.MaxChars, "list a subdirectory, or use depth=1");
            return ToolResults.Ok(text, new FileListing(SandboxPaths.Normalize(path), entries));
        });

    [McpServerTool(Name = "make_dir", Title = "Make a directory", Destructive = false, Idempotent = true, ReadOnly = false, OpenWorld = false)]
    [Description("Create a directory (and its parents) in the sandbox; nothing happens if it exists.")]
    public Task<CallToolResult> MakeDirAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute directory path.")] string path,
        [Description(ToolCalls.SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            var entry = await sandboxes.MakeDirAsync(caller, sandbox.Id, path, user: null, cancellationToken);
            return ToolResults.Ok($"{entry.Path} exists.", entry);
        });

    [McpServerTool(Name = "remove", Title = "Remove a file or directory", Destructive = true, Idempotent = true, ReadOnly = false, OpenWorld = false)]
    [Description("Delete a file, or a directory with everything in it, from the sandbox.")]
    public Task<CallToolResult> RemoveAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute path.")] string path,
        [Description(ToolCalls.SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            await sandboxes.RemoveFileAsync(caller, sandbox.Id, path, user: null, cancellationToken);
            return ToolResults.Ok($"Removed {path}.", new { removed = path });
        });

    [McpServerTool(Name = "move", Title = "Move or rename", Destructive = true, Idempotent = false, ReadOnly = false, OpenWorld = false)]
    [Description("Move or rename a file or directory in the sandbox (replaces an existing file at the destination).")]
    public Task<CallToolResult> MoveAsync(
        RequestContext<CallToolRequestParams> request,
        [Description("Absolute path of what to move.")] string from,
        [Description("Absolute destination path.")] string to,
        [Description(ToolCalls.SandboxIdHelp)] string? sandboxId = null,
        CancellationToken cancellationToken = default)
        => calls.GuardAsync(async caller =>
        {
            var sandbox = await calls.SandboxAsync(request, caller, sandboxId, cancellationToken);
            var entry = await sandboxes.RenameFileAsync(caller, sandbox.Id, from, to, user: null, cancellationToken);
            return ToolResults.Ok($"Moved {from} to {entry.Path}.", entry);
        });

    /// <summary>Lines <paramref name="offset"/> on (at most <paramref name="limit"/> of them, within the result cap) of a
    /// text file, numbered, read as a stream: the server holds the lines it returns, never the whole file, and stops
    /// at <see cref="MaxTextBytes"/> (a device or a /proc file has no end).</summary>
    private async Task<CallToolResult> ReadLinesAsync(CallerIdentity caller, string sandboxId, string path, int offset, int limit, CancellationToken cancellationToken)
    {
        await using var file = await sandboxes.ReadFileAsync(caller, sandboxId, path, user: null, cancellationToken);
        using var bounded = new BoundedStream(file, MaxTextBytes);
        using var reader = new StreamReader(bounded, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true), detectEncodingFromByteOrderMarks: false);
        var first = Math.Max(1, offset);
        var wanted = Math.Max(1, limit);
        var numbered = new StringBuilder();
        var buffer = new char[16 * 1024];
        var line = 1;         // the line being read
        var taken = 0;        // lines numbered so far
        var atLineStart = true;
        try
        {
            int read;
            while ((read = await reader.ReadAsync(buffer, cancellationToken)) > 0)
            {
                var chars = buffer.AsSpan(0, read);
                if (chars.Contains('\0'))
                {
                    return ToolResults.Error($"{path} is binary: read it with encoding=base64, or inspect it with run_command (file, xxd, python).");
                }

                while (!chars.IsEmpty)
                {
                    var end = chars.IndexOf('\n');
                    var part = end < 0 ? chars : chars[..end];

                    // Only the lines asked for are kept, and only up to the result's cap (a line may be endless).
                    var keep = line >= first && taken < wanted && numbered.Length <= calls.MaxChars;
                    if (keep && atLineStart)
                    {
                        numbered.Append(line.ToString(CultureInfo.InvariantCulture).PadLeft(6)).Append('\t');
                    }

                    if (keep)
                    {
                        numbered.Append(part[..Math.Min(part.Length, calls.MaxChars + 1 - Math.Min(numbered.Length, calls.MaxChars + 1))]);
                    }

                    atLineStart = end >= 0;
                    if (end < 0)
                    {
                        break;
                    }

                    if (keep)
                    {
                        numbered.Append('\n');
                        taken++;
                    }

                    line++;
                    chars = chars[(end + 1)..];
                }
            }
        }
        catch (DecoderFallbackException)
        {
            return ToolResults.Error($"{path} is not UTF-8 text: read it with encoding=base64, or inspect it with run_command (file, xxd, python).");
        }

        // A last line without a newline counts; an empty file has one empty line, as editors show it.
        if (!atLineStart && line >= first && taken < wanted)
        {
            numbered.Append('\n');
            taken++;
        }

        var lineCount = atLineStart ? Math.Max(line - 1, 1) : line;
        if (bounded.Exceeded)
        {
            return ToolResults.Error($"{path} holds more than {MaxTextBytes >> 20} MiB (or never ends, as devices and /proc files may), more than read_file pages through. Read part of it with run_command (e.g. head -c, sed -n '100,200p', or a script that summarises it).");
        }

        var last = first + taken - 1;
        var more = last < lineCount ? $" Lines {first}–{last} of {lineCount}; read on with offset={last + 1}." : "";
        var (text, cut) = OutputCap.Cap(numbered.ToString(), calls.MaxChars, "read fewer lines with offset and limit");
        return new CallToolResult { Content = [new TextContentBlock { Text = text + (more.Length > 0 || cut ? "\n" + more.Trim() : "") }] };
    }

    /// <summary>A whole file of at most <paramref name="limit"/> bytes; null when it holds more. Read, not trusted
    /// from its size: a device, a /proc file or a file still growing says nothing true about its length.</summary>
    private async Task<byte[]?> ReadAtMostAsync(CallerIdentity caller, string sandboxId, string path, long limit, CancellationToken cancellationToken)
    {
        await using var file = await sandboxes.ReadFileAsync(caller, sandboxId, path, user: null, cancellationToken);

        // Sized by what the file says it holds (nothing, for a device), so a regular file is not copied as it grows.
        using var buffer = new MemoryStream((int)Math.Clamp(file.Length + 1, 0, limit + 1));
        var chunk = new byte[64 * 1024];
        while (buffer.Length <= limit)
        {
            var read = await file.ReadAsync(chunk, cancellationToken);
            if (read == 0)
            {
                return buffer.ToArray();
            }

            buffer.Write(chunk, 0, read);
        }

        return null;
    }

    /// <summary>Writes a whole file; the agent creates missing parent directories itself.</summary>
    private async Task<FileEntry> WriteAsync(CallerIdentity caller, string sandboxId, string path, byte[] bytes, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(bytes);
        return await sandboxes.WriteFileAsync(caller, sandboxId, path, content, mode: null, user: null, cancellationToken);
    }

    private static int Occurrences(string text, string value)
    {
        var count = 0;
        for (var at = text.IndexOf(value, StringComparison.Ordinal); at >= 0; at = text.IndexOf(value, at + value.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    private static string? ImageType(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".png" => "image/png",
        ".jpg" or ".jpeg" => "image/jpeg",
        ".gif" => "image/gif",
        ".webp" => "image/webp",
        _ => null,
    };
}
