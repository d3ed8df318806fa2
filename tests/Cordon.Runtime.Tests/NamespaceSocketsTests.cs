using Cordon.Runtime.Network;
using Xunit;

namespace Cordon.Runtime.Tests;

/// <summary>Which sockets of a namespace's /proc/net tables someone still holds (so the namespace is not handed to
/// another sandbox): what the kernel alone keeps (TIME_WAIT, inode 0) is not.</summary>
public sealed class NamespaceSocketsTests
{
    private const string TcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    [Fact]
    public void Tcp_AListenerIsHeld_ATimeWaitIsNot()
    {
        var listener = "   0: 00000000:1E61 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 14001033 1 00000000723b227b 100 0 0 10 0\n";
        var timeWait = "   1: 0100007F:1F90 0100007F:C350 06 00000000:00000000 03:000016F1 00000000     0        0 0 3 0000000000000000\n";

        Assert.Equal(0, NamespaceSockets.Held(TcpHeader, 9));
        Assert.Equal(0, NamespaceSockets.Held(TcpHeader + timeWait, 9));
        Assert.Equal(1, NamespaceSockets.Held(TcpHeader + timeWait + listener, 9));
    }

    [Fact]
    public void Unix_AnAbstractListenerIsHeld()
    {
        const string Table = "Num       RefCount Protocol Flags    Type St Inode Path\n"
            + "00000000d85ce624: 00000002 00000000 00010000 0001 01 13966713 @cordon-left-behind\n";

        Assert.Equal(1, NamespaceSockets.Held(Table, 6));
    }

    [Fact]
    public void ALineWithoutItsInodeColumn_CountsAsHeld()
    {
        Assert.Equal(1, NamespaceSockets.Held(TcpHeader + "   0: 00000000:1E61\n", 9));
    }

    [Fact]
    public void HeldHere_InTheTestsOwnNamespace_ReadsEveryTable()
    {
        // The test host's namespace has sockets (the test runner's own): the tables are found and read.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        Assert.True(NamespaceSockets.HeldHere() >= 1);
    }
}
