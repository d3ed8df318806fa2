using System.Globalization;
using System.Net.Http.Json;
using Cordon.Protocol.Api;
using Cordon.Testing;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>What the tools people size their work by report inside a sandbox: its own limits, not the host's.</summary>
[Collection(DefaultImageCollection.Name)]
public sealed class LimitsViewTests(DefaultImageServer fixture)
{
    // Each line is one tool's answer, in this order.
    private const string Tools =
        "free -m | awk '/^Mem:/ {print $2}'; " +
        "free -m | awk '/^Swap:/ {print $2}'; " +
        "nproc; " +
        "python3 -c 'import os; print(os.cpu_count())'; " +
        "node -e 'const os = require(\"os\"); console.log(Math.round(os.totalmem() / 1048576)); console.log(os.cpus().length); console.log(os.availableParallelism())'; " +
        "top -bn1 | awk '/MiB Mem/ {print $4}'; " +
        "awk '{print $1}' /proc/uptime; " +
        "getconf _NPROCESSORS_ONLN";

    [Theory]
    [InlineData(1.0, 512)]
    [InlineData(0.5, 256)]
    [InlineData(2.0, 1024)]
    public async Task Tools_InASandbox_ReportItsCpusAndMemory(double cpu, int memoryMiB)
    {
        Assert.SkipWhen(cpu > Environment.ProcessorCount, $"this host has {Environment.ProcessorCount} CPUs");
        await using var sandbox = await fixture.CreateSandboxAsync(new CreateSandboxRequest { Cpu = cpu, MemoryMiB = memoryMiB });
        var cpus = Math.Min((int)Math.Ceiling(cpu), Environment.ProcessorCount).ToString(CultureInfo.InvariantCulture);
        var memory = memoryMiB.ToString(CultureInfo.InvariantCulture);

        var result = await sandbox.ShAsync(Tools, timeoutSeconds: 60);

        Assert.True(result.ExitCode == 0, result.Stderr);
        var answers = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(memory, answers[0]);                                  // free: total memory
        Assert.Equal("0", answers[1]);                                     // free: no swap
        Assert.Equal(cpus, answers[2]);                                    // nproc
        Assert.Equal(cpus, answers[3]);                                    // Python os.cpu_count()
        Assert.Equal(memory, answers[4]);                                  // Node os.totalmem()
        Assert.Equal(cpus, answers[5]);                                    // Node os.cpus().length
        Assert.Equal(cpus, answers[6]);                                    // Node os.availableParallelism()
        Assert.Equal(memory + ".0", answers[7]);                           // top: MiB Mem total
        Assert.True(double.Parse(answers[8], CultureInfo.InvariantCulture) < 60, "uptime " + answers[8]);
        Assert.Equal(cpus, answers[9]);                                    // getconf _NPROCESSORS_ONLN
    }

    [Fact]
    public async Task Health_OnThisHost_ReportsTheLimitsView()
    {
        using var http = new HttpClient { BaseAddress = fixture.Server.Address };

        var health = await http.GetFromJsonAsync("/health", ApiJsonContext.Default.HealthReport);

        Assert.True(health!.Runtimes[0].Lxcfs, string.Join("; ", health.Runtimes[0].Warnings));
    }
}
