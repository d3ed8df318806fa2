using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Cordon.Protocol.Api;
using Cordon.Runtime;
using Cordon.Runtime.Oci;
using Cordon.Server.Api;
using Cordon.Server.Auth;
using Cordon.Server.Compat.E2b;
using Cordon.Server.Images;
using Cordon.Server.Mcp;
using Cordon.Server.Sandboxes;
using Cordon.Server.State;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Cordon.Server;

/// <summary>Composes and runs the Cordon server.</summary>
public static class CordonServer
{
    public const string Version = "0.1.0";

    /// <summary>Builds the application: services, options (validated at start), middleware and endpoints.</summary>
    public static WebApplication Build(ServerSettings settings)
    {
        // Settings come from the command line and CORDON_ variables (docs/configuration.md). The host's defaults
        // would also read appsettings.json from the working directory and watch that directory, recursively,
        // for changes: one inotify watch per directory below it (13,600 from /tmp, with every sandbox's files in
        // it) and a thread handling an event for each file a sandbox writes. The content root is the install
        // directory instead, where no settings file ships, and nothing is watched.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
        });
        var overrides = new Dictionary<string, string?>(settings.Overrides);
        if (settings.DataDir is not null)
        {
            overrides["Cordon:DataDir"] = settings.DataDir;
        }

        if (settings.Runtime is not null)
        {
            overrides["Runtime:Runtime"] = settings.Runtime;
        }

        builder.Configuration.AddEnvironmentVariables("CORDON_").AddInMemoryCollection(overrides);
        builder.WebHost.UseUrls($"http://{settings.Listen}");
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // JSON endpoints take little; file and image uploads raise the limit per request.
            kestrel.Limits.MaxRequestBodySize = 4 << 20;
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromMinutes(2);
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);

        builder.Services.AddOptions<CordonOptions>().Bind(builder.Configuration.GetSection("Cordon")).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<OciRuntimeOptions>().Bind(builder.Configuration.GetSection("Runtime"))
            .PostConfigure<IOptions<CordonOptions>>((runtime, cordon) =>
            {
                var dataDir = Path.GetFullPath(cordon.Value.DataDir);
                runtime.StateDirectory = Path.Combine(dataDir, "sandboxes");

                // One runtime state directory per data directory: servers on different data dirs never see
                // (and so never reconcile away) each other's sandboxes.
                var tag = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(dataDir)))[..12];
                runtime.RuntimeRoot = Path.Combine("/run/cordon", tag, runtime.Runtime);
                runtime.BundledRuntimePath ??= Path.Combine(AppContext.BaseDirectory, runtime.Runtime);
                runtime.PrepareOpenNetworks = cordon.Value.DefaultNetwork == "internet";
                if (string.IsNullOrEmpty(runtime.AgentPath))
                {
                    runtime.AgentPath = Path.Combine(AppContext.BaseDirectory, "cordon-agent");
                }
            })
            .Validate(r => r.Runtime is "crun" or "runc", "Runtime:Runtime must be 'crun' or 'runc'.")
            .ValidateOnStart();

        builder.Services.AddSingleton<StateStore>();
        builder.Services.AddSingleton<ApiKeyService>();
        builder.Services.AddSingleton<ImageService>();
        builder.Services.AddSingleton<ImageBuildQueue>();
        builder.Services.AddSingleton<Images.Builds.ImageBuilder>();
        builder.Services.AddSingleton<Images.Builds.TemplateFiles>();
        builder.Services.AddSingleton<Compat.E2b.E2bTemplateBuilds>();
        builder.Services.AddSingleton<OciRuntime>();
        builder.Services.AddSingleton<ISandboxRuntime>(sp => sp.GetRequiredService<OciRuntime>());
        builder.Services.AddSingleton<Secrets.SecretService>();
        builder.Services.AddSingleton<Network.EgressCa>();
        builder.Services.AddSingleton<Network.EgressTrust>();
        var cordonMetrics = new Observability.CordonMetrics();
        builder.Services.AddSingleton(_ => cordonMetrics); // made by the container's factory: disposed with it
        builder.Services.AddSingleton<SandboxService>();
        builder.Services.AddSingleton<Network.SandboxEgress>();
        builder.Services.AddHostedService<SandboxHousekeeper>();
        builder.Services.AddHostedService<StateCheckpointer>();
        builder.Services.AddCordonMcp(Version);
        builder.Services.AddSingleton<SandboxTokens>();
        builder.Services.AddSingleton<RequestRates>();
        builder.Services.AddSingleton<Envd>();
        builder.Services.AddSingleton<EnvdWatchers>();
        builder.Services.AddHttpForwarder();
        builder.Services.AddSingleton<SandboxPortProxy>();
        // Prometheus' text format at /metrics: Cordon's own meter and ASP.NET Core's request metrics; every scrape
        // reads the gauges afresh (no cached answer).
        builder.Services.AddOpenTelemetry().ConfigureResource(r => r.AddService("cordon", serviceVersion: Version)).WithMetrics(metrics => metrics
            .AddMeter(Observability.CordonMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel")
            .AddView(instrument => instrument.Meter.Name == Observability.CordonMetrics.MeterName && !ReferenceEquals(instrument.Meter, cordonMetrics.Meter)
                ? MetricStreamConfiguration.Drop
                : null)
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        builder.Services.AddExceptionHandler<ProblemMapping>();
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = ProblemMapping.CompleteFrameworkProblem);
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);
            o.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull;
        });
        builder.Services.AddOpenApi("v1", o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "Cordon";
            document.Info.Version = Version;
            document.Info.Description = "Self-hosted sandboxes for AI agents. Authenticate with 'Authorization: Bearer <key>'.";
            document.Servers?.Clear();
            return Task.CompletedTask;
        }).AddOperationTransformer(async (operation, context, cancellationToken) =>
        {
            // POST /v1/images takes an archive, or JSON that names what to pull: describe the JSON as what it is.
            if (operation.OperationId == "ImportImage" && operation.RequestBody?.Content is { } content && content.TryGetValue("application/json", out var json))
            {
                json.Schema = await context.GetOrCreateSchemaAsync(typeof(PullImageRequest), null, cancellationToken);
            }
        }));

        var app = builder.Build();
        app.UseExceptionHandler();

        // Answers without a body (unknown route, wrong method, wrong media type) get problem details too.
        app.UseStatusCodePages();
        app.UseMiddleware<E2bSandboxPlane>();
        app.UseMiddleware<ApiKeyMiddleware>();
        app.UseMiddleware<McpSessionOwners>();
        app.UseOpenTelemetryPrometheusScrapingEndpoint(
            meterProvider: null,
            predicate: context => context.Request.Path == "/metrics",
            path: null,
            configureBranchedPipeline: Observability.MetricsAccess.AdminsOnly,
            optionsName: null);
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapHealthEndpoints();
        app.MapSandboxEndpoints();
        app.MapVolumeEndpoints();
        app.MapCodeEndpoints();
        app.MapImageEndpoints();
        app.MapBuildCacheEndpoints();
        app.MapKeyEndpoints();
        app.MapPoolEndpoints();
        app.MapSecretEndpoints();
        app.MapCordonMcp();
        app.MapE2bControlPlane();
        return app;
    }

    /// <summary>Prepares the host, reconciles state with what really runs, then serves until stopped.</summary>
    public static async Task<int> RunAsync(ServerSettings settings, CancellationToken cancellationToken)
    {
        await using var server = await StartAsync(settings, cancellationToken);
        await server.App.WaitForShutdownAsync(cancellationToken);
        return 0;
    }

    /// <summary>Starts a server and returns once it accepts requests: the admin key is installed, the host
    /// probed (and repaired where possible), state reconciled with what really runs.</summary>
    public static async Task<RunningServer> StartAsync(ServerSettings settings, CancellationToken cancellationToken)
    {
        var app = Build(settings);
        try
        {
            var options = app.Services.GetRequiredService<IOptions<CordonOptions>>().Value;
            var generated = app.Services.GetRequiredService<ApiKeyService>().Initialize();
            var capabilities = await app.Services.GetRequiredService<ISandboxRuntime>().ProbeAsync(cancellationToken);
            if (!capabilities.Available)
            {
                Console.Error.WriteLine("cordon: this host cannot create sandboxes yet:");
                foreach (var problem in capabilities.Problems)
                {
                    Console.Error.WriteLine("  - " + problem);
                }
            }
            else
            {
                await app.Services.GetRequiredService<SandboxService>().ReconcileAsync(cancellationToken);
                if (app.Services.GetRequiredService<Network.SandboxEgress>().Start() is { } egressProblem)
                {
                    Console.Error.WriteLine("cordon: " + egressProblem);
                }
            }

            // From the host cache the default image is ready in seconds: have it before accepting requests.
            // Only a build from scratch (minutes) runs in the background while the API serves.
            var images = app.Services.GetRequiredService<ImageService>();
            if (options.PrepareDefaultImage && capabilities.Available && images.DefaultImageIsQuick())
            {
                try
                {
                    await images.PrepareDefaultAsync(rebuild: false, cancellationToken);
                }
                catch (Errors.CordonException ex)
                {
                    Console.Error.WriteLine("cordon: " + ex.Message);
                }
            }

            await app.StartAsync(cancellationToken);
            var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
                .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();
            if (generated is not null)
            {
                AnnounceKey(address, generated);
            }

            Console.WriteLine($"cordon {Version} listening on {address} (data: {options.DataDir}, runtime: {capabilities.Name} {capabilities.Version})");
            if (options.PrepareDefaultImage)
            {
                app.Services.GetRequiredService<ImageBuildQueue>().BuildDefault(rebuild: false);
            }

            return new RunningServer(app, new Uri(address));
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>Shows a generated admin key once, and saves it for the local CLI (mode 0600).</summary>
    private static void AnnounceKey(string url, string key)
    {
        Console.WriteLine();
        Console.WriteLine("  A new admin API key was generated. It is shown only now (the server stores a hash):");
        Console.WriteLine();
        Console.WriteLine("      " + key);
        Console.WriteLine();
        var home = Environment.GetEnvironmentVariable("HOME") ?? "/root";
        var dir = Path.Combine(home, ".config", "cordon");
        try
        {
            Directory.CreateDirectory(dir);
            var file = Path.Combine(dir, "config.json");
            File.WriteAllText(file, JsonSerializer.Serialize(new Dictionary<string, string> { ["url"] = url, ["apiKey"] = key }));
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Console.WriteLine($"  The cordon CLI on this machine will use it from {file}.");
        }
        catch (IOException)
        {
        }

        Console.WriteLine();
    }
}
