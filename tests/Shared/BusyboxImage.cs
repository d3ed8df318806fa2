using System.Diagnostics;
using System.Formats.Tar;

namespace Cordon.Testing;

/// <summary>A tiny root file system (busybox-static, Debian package <c>busybox-static</c>) for tests where the
/// default image is not what is tested: /bin/busybox with its applets, root and an unprivileged <c>user</c>.</summary>
public static class BusyboxImage
{
    private const string Busybox = "/bin/busybox";

    /// <summary>The image as an uncompressed tarball.</summary>
    public static MemoryStream CreateTarball()
    {
        if (!File.Exists(Busybox))
        {
            throw new InvalidOperationException("/bin/busybox is missing: apt-get install busybox-static (./cordon test installs it).");
        }

        var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var dir in new[] { "bin", "etc", "root", "tmp", "home", "home/user", "usr", "usr/bin", "proc", "sys", "dev" })
            {
                var mode = dir == "tmp" ? (UnixFileMode)0b1_111_111_111 : (UnixFileMode)0b111_101_101;
                var entry = new PaxTarEntry(TarEntryType.Directory, dir + "/") { Mode = mode, ModificationTime = DateTimeOffset.UtcNow };
                if (dir == "home/user")
                {
                    entry.Uid = 1000;
                    entry.Gid = 1000;
                }

                writer.WriteEntry(entry);
            }

            writer.WriteEntry(Busybox, "bin/busybox");
            foreach (var applet in Applets().Where(a => a != "busybox"))
            {
                writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "bin/" + applet) { LinkName = "busybox", Mode = (UnixFileMode)0b111_111_111 });
            }

            AddText(writer, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
            AddText(writer, "etc/group", "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n");
            AddText(writer, "etc/hostname", "busybox\n");
        }

        stream.Position = 0;
        return stream;
    }

    private static void AddText(TarWriter writer, string name, string text)
    {
        var entry = new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = (UnixFileMode)0b110_100_100,
            DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text)),
        };
        writer.WriteEntry(entry);
    }

    private static IEnumerable<string> Applets()
    {
        var info = new ProcessStartInfo(Busybox, "--list") { RedirectStandardOutput = true };
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }
}
