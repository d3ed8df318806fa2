using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace Cordon.Runtime.Images;

/// <summary>Builds the default image from Debian packages with mmdebstrap (apt resolves the dependencies),
/// and caches the result on the host so every later data directory imports it in seconds.</summary>
public sealed class DefaultImageBuilder(string cacheDirectory, string mirror, string suite = "bookworm")
{
    /// <summary>What the default image holds: a shell and coreutils, Python with the data stack and a
    /// Jupyter kernel, Node.js with npm and TypeScript (for code contexts), git, curl and CA certificates.</summary>
    public static readonly IReadOnlyList<string> Packages =
    [
        "bash", "coreutils", "procps", "less", "ca-certificates", "curl", "git", "python3", "python3-pip", "python3-venv",
        "python3-numpy", "python3-pandas", "python3-matplotlib", "python3-ipykernel", "nodejs", "npm", "node-typescript",
    ];

    /// <summary>Changes to the image that apt cannot express: an unprivileged <c>user</c> (E2B's default);
    /// pip allowed to install into the system Python (the sandbox is disposable; PEP 668 only gets in the way);
    /// matplotlib's font cache built for both users, or every sandbox's first plot would spend seconds on it.</summary>
    private static readonly IReadOnlyList<string> Hooks =
    [
        "chroot \"$1\" useradd --create-home --shell /bin/bash --uid 1000 user",
        "rm -f \"$1\"/usr/lib/python3*/EXTERNALLY-MANAGED",
        "chroot \"$1\" env HOME=/root MPLBACKEND=Agg python3 -c 'import matplotlib.pyplot'",
        "chroot --userspec=1000:1000 \"$1\" env HOME=/home/user MPLBACKEND=Agg python3 -c 'import matplotlib.pyplot'",
    ];

    /// <summary>Changes whenever the recipe does, so a cached build is never stale.</summary>
    public string RecipeHash => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
        string.Join('\n', [suite, mirror, .. Packages, .. Hooks])))).Substring(0, 16);

    public string CachedTarball => Path.Combine(cacheDirectory, $"default-{suite}-{RecipeHash}.tar");

    /// <summary>The host already holds a build of the current recipe (preparing takes seconds, not minutes).</summary>
    public bool IsCached => File.Exists(CachedTarball);

    /// <summary>Returns the cached root file system tarball, building it first when missing.</summary>
    /// <param name="progress">Receives mmdebstrap's progress lines.</param>
    /// <exception cref="InvalidOperationException">mmdebstrap is missing or failed; the message says why.</exception>
    public async Task<string> EnsureTarballAsync(IProgress<string> progress, CancellationToken cancellationToken)
    {
        if (File.Exists(CachedTarball))
        {
            progress.Report("using the cached default image build");
            return CachedTarball;
        }

        const string mmdebstrap = "/usr/bin/mmdebstrap";
        if (!File.Exists(mmdebstrap))
        {
            throw new InvalidOperationException("mmdebstrap is not installed (apt-get install mmdebstrap); it builds the default image.");
        }

        Directory.CreateDirectory(cacheDirectory);
        var partial = CachedTarball + ".partial";
        var info = new ProcessStartInfo(mmdebstrap)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("--variant=apt");
        info.ArgumentList.Add("--include=" + string.Join(',', Packages));
        foreach (var hook in Hooks)
        {
            info.ArgumentList.Add("--customize-hook=" + hook);
        }

        info.ArgumentList.Add("--format=tar");
        info.ArgumentList.Add(suite);
        info.ArgumentList.Add(partial);
        info.ArgumentList.Add(mirror);

        using var process = Process.Start(info) ?? throw new InvalidOperationException("mmdebstrap did not start.");
        process.StandardInput.Close();
        var tail = new Queue<string>();
        var stderr = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync(cancellationToken) is { } line)
            {
                progress.Report(line);
                tail.Enqueue(line);
                if (tail.Count > 20)
                {
                    tail.Dequeue();
                }
            }
        }, cancellationToken);
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        await stderr;
        await stdout;
        if (process.ExitCode != 0)
        {
            File.Delete(partial);
            throw new InvalidOperationException($"mmdebstrap failed (exit {process.ExitCode}): {string.Join(" | ", tail.TakeLast(5))}");
        }

        File.Move(partial, CachedTarball, overwrite: true);
        return CachedTarball;
    }
}
