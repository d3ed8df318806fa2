using Cordon.Runtime.Network;
using Xunit;

namespace Cordon.Runtime.Tests;

/// <summary>Whether a namespace still has sockets someone holds (so it is not handed to another sandbox): what the
/// kernel alone keeps of closed TCP connections (inode 0) is not held.</summary>
public sealed class NamespaceSocketsTests
{
    private const string ProtocolsHeader = "protocol  size sockets  memory press maxhdr  slab module     cl co di ac io in de sh ss gs se re sp bi br ha uh gp em\n";
    private const string TcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    [Fact]
    public void Protocols_AnEmptyNamespace_CountsNothing_AUnixSocketIsCounted()
    {
        const string Empty = ProtocolsHeader
            + "UNIX      1088      0      -1   NI       0   yes  kernel      n  n  n  n  n  n  n  n  n  n  n  n  n  n  n  n  n  n  n\n"
            + "TCP       2432      0       3   no      320   yes  kernel      y  y  y  y  y  y  y  y  y  y  y  y  y  n  y  y  y  y  y\n";
        Assert.Equal((0, 0), NamespaceSockets.Counted(Empty));
        Assert.Equal((2, 1), NamespaceSockets.Counted(Empty.Replace("UNIX      1088      0", "UNIX      1088      1").Replace("TCP       2432      0", "TCP       2432      2")));
    }

    [Fact]
    public void Tcp_AListenerIsHeld_AnOrphanIsNot()
    {
        var listener = "   0: 00000000:1E61 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 14001033 1 00000000723b227b 100 0 0 10 0\n";
        var orphan = "   1: 0100007F:1F90 0100007F:C350 04 00000001:00000000 01:00000014 00000000     0        0 0 1 0000000000000000 20 4 0 10 -1\n";

        Assert.Equal(0, NamespaceSockets.HeldTcp(TcpHeader));
        Assert.Equal(0, NamespaceSockets.HeldTcp(TcpHeader + orphan));
        Assert.Equal(1, NamespaceSockets.HeldTcp(TcpHeader + orphan + listener));
    }

    [Fact]
    public void UnreadableLines_CountAsHeld()
    {
        Assert.Equal(1, NamespaceSockets.HeldTcp(TcpHeader + "   0: 00000000:1E61\n"));
        Assert.Equal((0, 1), NamespaceSockets.Counted(ProtocolsHeader + "UNIX\n"));
    }

    [Fact]
    public void HeldHere_SeesASocketOfThisNamespace()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        Assert.True(NamespaceSockets.HeldHere() >= 1);
    }
}
