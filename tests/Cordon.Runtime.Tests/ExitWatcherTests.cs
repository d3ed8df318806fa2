using System.Runtime.InteropServices;
using Cordon.Runtime.Interop;
using Xunit;

namespace Cordon.Runtime.Tests;

/// <summary>The exit watcher's raw descriptors are closed once: the server's container disposes the runtime twice,
/// and a second close would close whatever file has the number by then.</summary>
public sealed partial class ExitWatcherTests
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int dup2(int fd, int target);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int command);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [Fact]
    public void DisposedTwice_ClosesNoOtherFile()
    {
        var watcher = new ExitWatcher();
        var number = watcher.EpollDescriptor;
        watcher.Dispose();

        // Another file takes the number, as the next descriptor opened anywhere in the process would.
        using var other = File.OpenHandle("/dev/null");
        Assert.Equal(number, dup2((int)other.DangerousGetHandle(), number));
        try
        {
            watcher.Dispose();

            Assert.True(fcntl(number, 1 /* F_GETFD */) >= 0, "the second dispose closed another file's descriptor");
        }
        finally
        {
            close(number);
        }
    }
}
