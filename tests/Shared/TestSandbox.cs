using Cordon.Client;
using Cordon.Protocol.Api;

namespace Cordon.Testing;

/// <summary>A sandbox created for one test; destroyed when disposed.</summary>
public sealed class TestSandbox(CordonClient client, SandboxInfo info) : IAsyncDisposable
{
    public string Id => Info.Id;

    public SandboxInfo Info { get; } = info;

    /// <summary>Runs a shell command to its end.</summary>
    public Task<ExecResult> ShAsync(string command, int timeoutSeconds = 30)
        => client.ExecAsync(Id, ExecRequestBody.FromShell(command) with { TimeoutSeconds = timeoutSeconds });

    public Task<ExecResult> ExecAsync(ExecRequestBody body) => client.ExecAsync(Id, body);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await client.DeleteSandboxAsync(Id);
        }
        catch (CordonApiException ex) when (ex.Status == 404)
        {
            // The test destroyed it already. Any other answer fails the test: a sandbox the server could not
            // destroy would outlive it (and the run's check for leftover mounts would fail without saying why).
        }
    }
}
