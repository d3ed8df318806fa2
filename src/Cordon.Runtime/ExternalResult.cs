namespace Cordon.Runtime;

/// <summary>How a host program ended and what it printed.</summary>
internal sealed record ExternalResult(int ExitCode, string Stdout, string Stderr)
{
    public bool Succeeded => ExitCode == 0;
}
