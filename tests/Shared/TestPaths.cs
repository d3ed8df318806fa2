namespace Cordon.Testing;

/// <summary>Where the tests find what <c>./cordon build</c> produced.</summary>
public static class TestPaths
{
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>The static agent binary; tests run the real one.</summary>
    public static string AgentPath
    {
        get
        {
            var path = Environment.GetEnvironmentVariable("CORDON_TEST_AGENT") ?? Path.Combine(RepositoryRoot, ".artifacts", "cordon", "cordon-agent");
            return File.Exists(path) ? path : throw new InvalidOperationException($"The agent binary {path} is missing: run ./cordon build (./cordon test does it).");
        }
    }

    public static string CliPath => Path.Combine(RepositoryRoot, ".artifacts", "cordon", "cordon");

    /// <summary>Where tools/static-crun puts the static build of the installed crun (./cordon test makes it).</summary>
    public static string StaticCrunPath => Path.Combine(RepositoryRoot, ".artifacts", "cordon", "crun");

    /// <summary>A fresh directory under /tmp, removed by the caller.</summary>
    public static string NewTempDirectory(string purpose)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"cordon-test-{purpose}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Bind-mounts <paramref name="source"/> at <paramref name="target"/> with mount(8).</summary>
    public static void BindMount(string source, string target)
    {
        using var mount = System.Diagnostics.Process.Start("/bin/mount", ["--bind", source, target]);
        mount.WaitForExit();
        if (mount.ExitCode != 0)
        {
            throw new InvalidOperationException($"mount --bind {source} {target} exited {mount.ExitCode}");
        }
    }

    /// <summary>Lazily unmounts everything mounted at or below <paramref name="path"/> (the server makes its
    /// sandbox directory a private mount; a test must leave the host as it found it).</summary>
    public static void UnmountTree(string path)
    {
        var mounts = File.ReadAllLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4])
            .Where(m => m == path || m.StartsWith(path + "/", StringComparison.Ordinal))
            .OrderByDescending(m => m.Length);
        foreach (var mount in mounts)
        {
            using var umount = System.Diagnostics.Process.Start("/bin/umount", ["-l", mount]);
            umount.WaitForExit();
        }
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cordon.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (Cordon.slnx) above the test binaries.");
    }
}
