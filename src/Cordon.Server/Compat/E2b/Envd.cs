using System.Text.Json.Nodes;
using Cordon.Server.Auth;
using Cordon.Server.Errors;
using Cordon.Server.Sandboxes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Cordon.Server.Compat.E2b;

/// <summary>envd, E2B's in-sandbox daemon, as the SDKs call it: <c>process.Process</c> (EnvdProcesses.cs) and
/// <c>filesystem.Filesystem</c> (EnvdFilesystem.cs) over Connect RPC, <c>/files</c> for uploads and downloads
/// (EnvdFiles.cs), <c>/health</c>. Processes are the service's background commands, so they outlive the request
/// that started them (the SDK's <c>disconnect()</c> and <c>commands.connect(pid)</c>), bounded by the call's
/// <c>Connect-Timeout-Ms</c>.</summary>
public sealed partial class Envd(SandboxService sandboxes, EnvdWatchers watchers, IOptions<CordonOptions> options)
{
    public async Task HandleAsync(HttpContext context, Sandbox sandbox, CallerIdentity caller)
    {
        var path = context.Request.Path.Value ?? "";
        var method = context.Request.Method;
        if (path == "/health")
        {
            context.Response.StatusCode = 204;
            return;
        }

        if (path == "/files" && (HttpMethods.IsGet(method) || HttpMethods.IsPost(method)))
        {
            await FilesAsync(context, sandbox, caller);
            return;
        }

        if (!HttpMethods.IsPost(method) || !path.StartsWith("/process.Process/", StringComparison.Ordinal) && !path.StartsWith("/filesystem.Filesystem/", StringComparison.Ordinal))
        {
            await E2bErrors.Body(404, $"envd has no {method} {path}.").ExecuteAsync(context);
            return;
        }

        var stream = ConnectRpc.IsStream(context);
        try
        {
            if (path == "/process.Process/StreamInput")
            {
                await StreamInputAsync(context, sandbox, caller);
                return;
            }

            var request = await ConnectRpc.ReadRequestAsync(context);
            switch (path)
            {
                case "/process.Process/Start":
                    await StartAsync(context, sandbox, caller, request);
                    return;
                case "/process.Process/Connect":
                    await ConnectAsync(context, sandbox, caller, request);
                    return;
                case "/filesystem.Filesystem/WatchDir":
                    await WatchDirAsync(context, sandbox, caller, request);
                    return;
            }

            var response = path.StartsWith("/process.Process/", StringComparison.Ordinal)
                ? await ProcessCallAsync(path, sandbox, caller, request, context.RequestAborted)
                : await FilesystemCallAsync(path, context, sandbox, caller, request);
            await ConnectRpc.WriteUnaryAsync(context, response);
        }
        catch (Exception ex) when (Translate(ex) is { } error)
        {
            if (stream)
            {
                ConnectRpc.BeginStream(context);
                await ConnectRpc.EndStreamAsync(context, error);
            }
            else
            {
                await ConnectRpc.WriteUnaryErrorAsync(context, error);
            }
        }
    }

    // ---- users and paths ------------------------------------------------------------------------

    /// <summary>E2B's templates run as <c>user</c> (home /home/user); other images as their own default user.</summary>
    internal static string? DefaultUser(Sandbox sandbox)
        => sandbox.Metadata.GetValueOrDefault(E2bControlPlane.TemplateMetadata) is "base" or "code-interpreter-v1" or "code-interpreter" ? "user" : null;

    /// <summary>The user a request acts as: the SDK's basic-auth user name, else the template's.</summary>
    private static string? User(HttpContext context, Sandbox sandbox) => E2bSandboxPlane.BasicUser(context) ?? DefaultUser(sandbox);

    /// <summary>envd resolves <c>~</c> and relative paths against the user's home.</summary>
    private static string Resolve(Sandbox sandbox, HttpContext context, string path) => SandboxUsers.Resolve(User(context, sandbox) ?? sandbox.DefaultUser, path);

    private static string Str(JsonObject node, string name)
        => node[name]?.GetValue<string>() ?? throw new ConnectException("invalid_argument", $"{name} is missing.");

    /// <summary>The service's errors as Connect codes, as envd would have answered; a field of the wrong JSON type as
    /// invalid_argument.</summary>
    private static ConnectException? Translate(Exception ex) => ex switch
    {
        ConnectException connect => connect,
        CordonException cordon => E2bErrors.ToConnect(cordon),
        FormatException f => new ConnectException("invalid_argument", f.Message),
        InvalidOperationException i => new ConnectException("invalid_argument", i.Message),
        _ => null,
    };
}
