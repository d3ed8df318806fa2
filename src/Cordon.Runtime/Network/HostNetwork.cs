using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Cordon.Runtime.Network;

/// <summary>The host's side of sandbox networking: Cordon's nftables table, the gateway address on the host's
/// loopback interface (where the server's resolver and proxy listen; the host answers ARP for it on every sandbox
/// link, and the kernels we meet do not all have dummy interfaces), and one network namespace per sandbox with a routed veth
/// pair (no bridge: sandboxes share no link, so every packet between them passes the host's rules). Namespaces are
/// prepared ahead, a few at a time, by a background thread (~25 ms of <c>ip</c> and <c>nft</c> each), so a create
/// only takes one.</summary>
/// <remarks>
/// A slot is a number: its host interface is <c>cdh{slot}</c>, its sandbox's address the subnet's
/// <c>slot + 2</c>-th. A prepared slot's namespace is held by the server (a descriptor of it, in
/// <see cref="Slot"/>), then by its sandbox's processes; at destroy the server takes a descriptor again before they
/// end. A destroyed sandbox's slot is given to a later create when it is clean (<see cref="NamespaceSockets"/>; its policy and counters
/// reset), so a steady stream of creates and destroys makes and tears down no namespaces at all; otherwise, and
/// beyond what the pool keeps, its namespace ends with the last descriptor and takes both veth ends with it, and
/// its rules are removed in batches. Releases never make a destroy wait for <c>nft</c>, whose commits queue behind
/// the kernel's teardown of dead namespaces. Everything here is created on start, owned by Cordon, and removed
/// by <see cref="RemoveEverything"/>.
/// </remarks>
internal sealed partial class HostNetwork : IDisposable
{
    /// <summary>The label of Cordon's addresses on <c>lo</c>, so they are recognisably Cordon's.</summary>
    public const string GatewayLabel = "lo:cordon";

    /// <summary>Servers one host can run at once: each has its own service address after the gateway's.</summary>
    public const int MaxServers = 200;

    /// <summary>Where this server's resolver and proxy listen, for its own sandboxes: the address after the gateway
    /// that it claimed host-wide (several servers share a host's gateway, not their resolvers).</summary>
    public IPAddress ServiceAddress => Offset(_settings.Gateway, 1 + _serverIndex);

    private readonly NetworkSettings _settings;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<Slot> _ready = new();
    private readonly ConcurrentQueue<Slot> _returned = new();
    private readonly ConcurrentQueue<int> _released = new();
    private readonly ConcurrentDictionary<int, (long Received, long Sent)> _trafficBefore = new();

    // Slots on the shared default-policy chain (their refusals are counted in a set, not in chains of their own).
    private readonly ConcurrentDictionary<int, bool> _shared = new();
    private readonly SemaphoreSlim _settling = new(1, 1);
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _hostNamespace = File.OpenHandle("/proc/thread-self/ns/net", FileMode.Open, FileAccess.Read);
    private readonly Oci.IdRangeAllocator _claims;
    private readonly Oci.IdRangeAllocator _servers;
    private int _serverIndex = -1;
    private readonly SemaphoreSlim _wanted = new(0);
    private Thread? _thread;
    private FileStream? _serverLock;
    private volatile bool _closed;

    /// <param name="owner">This server's state directory, written into its slot claims.</param>
    public HostNetwork(NetworkSettings settings, string owner, ILogger logger)
    {
        _settings = settings;
        _logger = logger;

        // Slots are claimed host-wide, as id ranges are: two servers on one host share the table and the subnet.
        _claims = new Oci.IdRangeAllocator(0, settings.MaxSlots, Path.Combine(settings.StateDirectory, "slots"), owner, step: 1, rotate: true);
        _servers = new Oci.IdRangeAllocator(0, MaxServers, Path.Combine(settings.StateDirectory, "servers"), owner, step: 1);
    }

    public NetworkSettings Settings => _settings;

    /// <summary>Sets up the host (forwarding, the gateway address, the table) and starts preparing slots.</summary>
    /// <param name="inUse">Slots of sandboxes found running: kept, everything else of ours is removed.</param>
    /// <returns>Null when ready, else why the host cannot give sandboxes a network.</returns>
    public async Task<string?> StartAsync(IReadOnlyDictionary<int, IPAddress> inUse, CancellationToken cancellationToken)
    {
        if (!File.Exists(Tools.Nft))
        {
            return "nft is missing (Debian package nftables): sandboxes get loopback only.";
        }

        Directory.CreateDirectory(_settings.StateDirectory);

        // Starts are one at a time host-wide; the first server (no other holds the servers' lock) builds the table
        // afresh, dropping whatever a crash left in it; later ones keep the entries of the others' sandboxes.
        using var starting = await LockAsync(Path.Combine(_settings.StateDirectory, "start.lock"), FileShare.None, cancellationToken);
        bool first;
        using (var alone = TryLock(Path.Combine(_settings.StateDirectory, "servers.lock"), FileShare.None))
        {
            first = alone is not null;
        }

        _serverLock = await LockAsync(Path.Combine(_settings.StateDirectory, "servers.lock"), FileShare.ReadWrite, cancellationToken);

        var forwardingWasOff = File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim() == "0";
        var marker = Path.Combine(_settings.StateDirectory, "ip-forward-was-off");
        if (forwardingWasOff)
        {
            await File.WriteAllTextAsync(marker, "1", cancellationToken);
            await File.WriteAllTextAsync("/proc/sys/net/ipv4/ip_forward", "1", cancellationToken);
        }

        // This server's service address: the one it had before a restart (its adopted sandboxes' resolv.conf names
        // it), else a free one.
        try
        {
            if (_servers.Owned() is [var earlier, ..])
            {
                _servers.MarkUsed(earlier);
                _serverIndex = earlier;
            }
            else
            {
                _serverIndex = _servers.Allocate();
            }
        }
        catch (SandboxRuntimeException)
        {
            return $"{MaxServers} Cordon servers run on this host already: sandboxes get loopback only.";
        }

        foreach (var address in new[] { _settings.Gateway, ServiceAddress })
        {
            if (await RunAsync(Tools.Ip, ["addr", "replace", $"{address}/32", "dev", "lo", "label", GatewayLabel], null, cancellationToken, allowFailure: true) is { } ipError)
            {
                return $"the address {address} could not be added to lo: " + ipError;
            }
        }

        var table = NftRules.Base(_settings.Gateway, _settings.ProxyPort, _settings.Subnet, File.Exists(marker)) + NftRules.AddService(ServiceAddress);
        if (await NftAsync(first ? NftRules.Fresh + table : table, cancellationToken) is { } error)
        {
            return "nftables refused Cordon's table: " + error;
        }

        foreach (var (slot, _) in inUse)
        {
            _claims.MarkUsed(slot);
        }

        // Leftovers of an earlier run: interfaces of slots no live sandbox uses, and no other live server claims.
        foreach (var name in Directory.EnumerateDirectories("/sys/class/net").Select(Path.GetFileName))
        {
            if (name is not null && name.StartsWith(NftRules.InterfacePrefix, StringComparison.Ordinal)
                && int.TryParse(name.AsSpan(NftRules.InterfacePrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var slot)
                && !inUse.ContainsKey(slot) && _claims.TryTake(slot))
            {
                EndHolder(HolderFile(slot));
                await RunAsync(Tools.Ip, ["link", "del", name], null, cancellationToken, allowFailure: true);
                await NftAsync(NftRules.RemoveSlot(slot, AddressOf(slot)), cancellationToken);
                _claims.Release(slot);
            }
        }

        // Holders recorded by a server that died before their slot had its interface.
        var holders = Path.Combine(_settings.StateDirectory, "holders");
        foreach (var file in Directory.Exists(holders) ? Directory.GetFiles(holders) : [])
        {
            if (!int.TryParse(Path.GetFileName(file), NumberStyles.None, CultureInfo.InvariantCulture, out var slot))
            {
                continue;
            }

            // A sandbox joined it, but the server died before it ended the holder: the sandbox holds it now.
            if (inUse.ContainsKey(slot))
            {
                EndHolder(file);
            }
            else if (_claims.TryTake(slot))
            {
                EndHolder(file);
                await NftAsync(NftRules.RemoveSlot(slot, AddressOf(slot)), cancellationToken);
                _claims.Release(slot);
            }
        }

        _claims.ReleaseStaleClaims();

        _thread = new Thread(Prepare) { IsBackground = true, Name = "network-preparer" };
        _thread.Start();
        _wanted.Release(_settings.Prepared);
        return null;
    }

    public IPAddress AddressOf(int slot) => Offset(_settings.Subnet.BaseAddress, slot + 2);

    private static IPAddress Offset(IPAddress address, int by)
    {
        var value = ToNumber(address) + (uint)by;
        return new IPAddress([(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);
    }

    private static uint ToNumber(IPAddress address) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes());

    /// <summary>The slot whose sandbox has this address, or null.</summary>
    public int? SlotOf(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (!_settings.Subnet.Contains(address))
        {
            return null;
        }

        var slot = (long)ToNumber(address) - ToNumber(_settings.Subnet.BaseAddress) - 2;
        return slot >= 0 && slot < _settings.MaxSlots ? (int)slot : null;
    }

    /// <summary>A prepared slot (made now when none is ready), its policy set to <paramref name="policy"/>.</summary>
    public async Task<Slot> TakeAsync(SandboxNetwork policy, CancellationToken cancellationToken)
    {
        _wanted.Release();
        if (!_ready.TryDequeue(out var slot))
        {
            // A destroyed sandbox's namespace waiting to be given back is one nft transaction from reuse; a new one is
            // six programs and, later, a namespace for the kernel to tear down. With several clients creating at once
            // the pool empties between two settles of the preparing thread: reuse first.
            if (!_returned.IsEmpty)
            {
                try
                {
                    await SettleAsync();
                }
                catch (Exception ex) when (ex is IOException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                    LogSettleFailed(ex.Message); // a new namespace, then
                }
            }

            if (!_ready.TryDequeue(out slot))
            {
                slot = await PrepareOneAsync(cancellationToken)
                    ?? throw new SandboxRuntimeException("The sandbox's network could not be made. The server log has the details.", "no network slot could be prepared");
            }
        }

        // A prepared slot already has the policy most creates ask for: then there is nothing to apply.
        if (!SamePolicy(policy, _settings.PrepareOpen ? SandboxNetwork.PublicInternet : SandboxNetwork.None))
        {
            try
            {
                await ApplyAsync(slot.Index, policy, cancellationToken);
            }
            catch
            {
                slot.Dispose();
                await ReleaseAsync(slot.Index, CancellationToken.None);
                throw;
            }
        }

        // A recycled slot's interface counted its earlier sandboxes' traffic.
        _trafficBefore[slot.Index] = ReadTraffic(slot.Index);
        return slot;
    }

    /// <summary>Replaces a slot's policy.</summary>
    public async Task ApplyAsync(int slot, SandboxNetwork policy, CancellationToken cancellationToken)
    {
        if (await NftAsync(NftRules.Policy(slot, policy, ServiceAddress, _settings.ProxyPort), cancellationToken) is { } error)
        {
            throw new SandboxRuntimeException("The sandbox's network policy could not be applied. The server log has the details.", "nft: " + error);
        }

        _shared[slot] = NftRules.IsShared(policy);
    }

    /// <summary>Registers a slot found in use at start (its sandbox outlived the server), with its policy.</summary>
    public async Task AdoptAsync(int slot, SandboxNetwork policy, CancellationToken cancellationToken)
    {
        await NftAsync(NftRules.AddSlot(slot, AddressOf(slot)), cancellationToken);
        await ApplyAsync(slot, policy, cancellationToken);
    }

    /// <summary>Gives back a slot whose sandbox is gone and whose namespace this server does not hold (or has
    /// closed): its rules are removed, then its number freed, by the preparing thread (at once when the server is
    /// stopping); its interface goes with its namespace.</summary>
    public async Task ReleaseAsync(int slot, CancellationToken cancellationToken)
    {
        _released.Enqueue(slot);
        await WakeOrSettleAsync();
    }

    /// <summary>A slot in use, with a descriptor of its namespace (taken from its sandbox), to give back.</summary>
    public Slot SlotAt(int index, SafeHandle ns) => new(index, AddressOf(index), ns);

    /// <summary>Gives back a destroyed sandbox's slot with its namespace: kept for a later create when it is clean and
    /// the pool has room, else released.</summary>
    public async Task ReturnAsync(Slot slot)
    {
        _returned.Enqueue(slot);
        await WakeOrSettleAsync();
    }

    private async Task WakeOrSettleAsync()
    {
        if (_closed || _thread is null)
        {
            await SettleAsync();
        }
        else
        {
            _wanted.Release();
        }
    }

    /// <summary>Slots given back since the last call: the clean ones (while the pool keeps fewer than twice its
    /// size) go back to the pool with the prepared policy, which also resets their counters; the others' namespaces
    /// are closed and their rules removed, in one <c>nft</c> transaction for all.</summary>
    private async Task SettleAsync()
    {
        await _settling.WaitAsync();
        try
        {
            var kept = new List<Slot>();
            var released = new List<int>();
            while (_returned.TryDequeue(out var slot))
            {
                var room = !_closed && _ready.Count + kept.Count < 2 * _settings.Prepared;
                var held = room && MadeByTheHost(slot) ? HeldSockets(slot) : int.MaxValue;
                if (room && held == 0)
                {
                    kept.Add(slot);
                }
                else
                {
                    if (room && held is > 0 and < int.MaxValue)
                    {
                        LogNotReused(slot.Index, held);
                    }

                    slot.Dispose();
                    released.Add(slot.Index);
                }
            }

            while (_released.TryDequeue(out var index))
            {
                released.Add(index);
            }

            if (kept.Count + released.Count == 0)
            {
                return;
            }

            var prepared = _settings.PrepareOpen ? SandboxNetwork.PublicInternet : SandboxNetwork.None;
            var script = new System.Text.StringBuilder();
            foreach (var slot in kept)
            {
                script.Append(NftRules.Policy(slot.Index, prepared, ServiceAddress, _settings.ProxyPort));
            }

            foreach (var index in released)
            {
                // Registered first, so that removing it cannot fail (a transaction with one failing command does nothing).
                script.Append(NftRules.AddSlot(index, AddressOf(index))).Append(NftRules.RemoveSlot(index, AddressOf(index)));
            }

            if (await NftAsync(script.ToString(), CancellationToken.None) is { } error)
            {
                LogSettleFailed(error);
                foreach (var slot in kept)
                {
                    slot.Dispose();
                    released.Add(slot.Index);
                }

                kept.Clear();
            }

            // Their interfaces go with their namespaces, in the kernel's own time (a preparation that meets a name
            // not yet free waits for it); the numbers are rotated, so that is rare.
            foreach (var slot in kept)
            {
                _shared[slot.Index] = NftRules.IsShared(prepared);
            }

            foreach (var index in released)
            {
                _trafficBefore.TryRemove(index, out _);
                _shared.TryRemove(index, out _);
                _claims.Release(index);
            }

            foreach (var slot in kept)
            {
                _ready.Enqueue(slot);
            }
        }
        finally
        {
            _settling.Release();
        }
    }

    /// <summary>Sockets someone still holds in a slot's namespace (read from inside it, on this thread, which goes
    /// back to the host's namespace before anything else runs on it); a namespace that cannot be entered counts as
    /// held.</summary>
    private int HeldSockets(Slot slot)
    {
        if (Interop.Syscalls.setns(slot.Namespace, CLONE_NEWNET) != 0)
        {
            return int.MaxValue;
        }

        try
        {
            return NamespaceSockets.HeldHere();
        }
        catch (IOException)
        {
            return int.MaxValue;
        }
        finally
        {
            if (Interop.Syscalls.setns(_hostNamespace, CLONE_NEWNET) != 0)
            {
                // Programs this thread starts would begin in a sandbox's network: nothing may run on.
                Environment.FailFast("a network-preparer thread could not return to the host's network namespace");
            }
        }
    }

    /// <summary>Whether a namespace belongs to the host's user namespace, as the ones this server makes do: one a
    /// sandbox made for itself (and moved its PID 1 into) is never handed to anyone.</summary>
    private static bool MadeByTheHost(Slot slot)
    {
        var owner = Interop.Syscalls.ioctl(slot.Namespace, NS_GET_USERNS, 0);
        if (owner < 0)
        {
            return false;
        }

        try
        {
            return new FileInfo($"/proc/self/fd/{owner}").LinkTarget is { } theirs && theirs == new FileInfo("/proc/self/ns/user").LinkTarget;
        }
        catch (IOException)
        {
            return false;
        }
        finally
        {
            Interop.Syscalls.close(owner);
        }
    }

    /// <summary>Returned namespaces reset together at most, and how long the first of them waits for others.</summary>
    private const int SettleBatch = 4;
    private static readonly TimeSpan SettleWindow = TimeSpan.FromMilliseconds(50);

    private const int CLONE_NEWNET = 0x40000000;
    private const nuint NS_GET_USERNS = 0xb701;

    /// <summary>Packets the kernel refused to the slot's sandbox so far, by why (the refusing rule).</summary>
    public async Task<IReadOnlyDictionary<string, long>> RefusalsAsync(int slot, CancellationToken cancellationToken)
    {
        if (_shared.GetValueOrDefault(slot))
        {
            // No element yet: nothing was refused.
            var counted = await ExternalProgram.RunAsync(Tools.Nft, NftRules.GetSharedRefusals(slot), cancellationToken);
            return counted.Succeeded ? NftRules.SharedRefusals(counted.Stdout) : new Dictionary<string, long>();
        }

        var result = await ExternalProgram.RunAsync(Tools.Nft, NftRules.ListPolicy(slot), cancellationToken);
        try
        {
            return result.Succeeded ? NftRules.Refusals(result.Stdout) : new Dictionary<string, long>();
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return new Dictionary<string, long>();
        }
    }

    /// <summary>Bytes the sandbox received and sent (its host interface's counters, seen from the other side).</summary>
    public (long Received, long Sent) Traffic(int slot)
    {
        var (received, sent) = ReadTraffic(slot);
        var (receivedBefore, sentBefore) = _trafficBefore.GetValueOrDefault(slot);
        return (Math.Max(0, received - receivedBefore), Math.Max(0, sent - sentBefore));
    }

    private static (long Received, long Sent) ReadTraffic(int slot)
    {
        var dir = "/sys/class/net/" + NftRules.Interface(slot) + "/statistics/";
        try
        {
            return (long.Parse(File.ReadAllText(dir + "tx_bytes"), CultureInfo.InvariantCulture), long.Parse(File.ReadAllText(dir + "rx_bytes"), CultureInfo.InvariantCulture));
        }
        catch (IOException)
        {
            return (0, 0);
        }
    }

    /// <summary>Ends this server's part: its prepared slots; and, when it is the last server and no sandbox on the
    /// host has a network any more, everything Cordon added to the host.</summary>
    public async Task StopAsync()
    {
        _closed = true;
        _wanted.Release();
        _thread?.Join(TimeSpan.FromSeconds(5));
        while (_ready.TryDequeue(out var slot))
        {
            _returned.Enqueue(slot);
        }

        await SettleAsync(); // closed: every slot given back is released

        // Sandboxes outlive their server, and their resolv.conf names its service address: while any is left, the
        // address stays this server's, for when it starts again.
        if (_serverIndex >= 0 && _claims.Owned().Count == 0)
        {
            await NftAsync(NftRules.RemoveService(ServiceAddress), CancellationToken.None);
            await RunAsync(Tools.Ip, ["addr", "del", $"{ServiceAddress}/32", "dev", "lo"], null, CancellationToken.None, allowFailure: true);
            _servers.Release(_serverIndex);
            _serverIndex = -1;
        }

        _serverLock?.Dispose();
        _serverLock = null;
        var claims = Path.Combine(_settings.StateDirectory, "slots");
        if (Directory.Exists(claims) && Directory.EnumerateFiles(claims).Any())
        {
            return;
        }

        if (TryLock(Path.Combine(_settings.StateDirectory, "servers.lock"), FileShare.None) is { } last)
        {
            using (last)
            {
                await RemoveEverything(_settings.StateDirectory, CancellationToken.None);
            }
        }
    }

    /// <summary>Removes everything Cordon added to the host: its table, the gateway address and sandbox interfaces,
    /// and turns IP forwarding back off if it turned it on.</summary>
    public static async Task RemoveEverything(string stateDirectory, CancellationToken cancellationToken)
    {
        if (File.Exists(Tools.Nft))
        {
            await RunAsync(Tools.Nft, ["delete", "table", "inet", NftRules.Table], null, cancellationToken, allowFailure: true);
        }

        await RunAsync(Tools.Ip, ["addr", "flush", "dev", "lo", "label", GatewayLabel], null, cancellationToken, allowFailure: true);
        foreach (var name in Directory.EnumerateDirectories("/sys/class/net").Select(Path.GetFileName))
        {
            if (name is not null && name.StartsWith(NftRules.InterfacePrefix, StringComparison.Ordinal))
            {
                await RunAsync(Tools.Ip, ["link", "del", name], null, cancellationToken, allowFailure: true);
            }
        }

        var marker = Path.Combine(stateDirectory, "ip-forward-was-off");
        if (File.Exists(marker))
        {
            await File.WriteAllTextAsync("/proc/sys/net/ipv4/ip_forward", "0", cancellationToken);
            File.Delete(marker);
        }
    }

    private void Prepare()
    {
        while (!_closed)
        {
            _wanted.Wait();

            // Returned namespaces are reset in batches, one `nft` transaction (~2.5 ms of CPU) for several, while the
            // pool has others to hand out: a create that finds it empty settles them itself (TakeAsync).
            var waited = Stopwatch.StartNew();
            while (!_closed && !_ready.IsEmpty && _returned.Count is > 0 and < SettleBatch && waited.Elapsed < SettleWindow)
            {
                Thread.Sleep(5);
            }

            try
            {
                SettleAsync().GetAwaiter().GetResult();
            }
            catch (Exception ex) when (ex is IOException or SandboxRuntimeException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                LogSettleFailed(ex.Message);
            }

            while (!_closed && _ready.Count < _settings.Prepared)
            {
                try
                {
                    // Namespaces given back meanwhile refill the pool before a new one is made.
                    if (!_returned.IsEmpty || !_released.IsEmpty)
                    {
                        SettleAsync().GetAwaiter().GetResult();
                        continue;
                    }

                    if (PrepareOneAsync(CancellationToken.None).GetAwaiter().GetResult() is { } slot)
                    {
                        _ready.Enqueue(slot);
                    }
                    else
                    {
                        break;
                    }
                }
                catch (Exception ex) when (ex is IOException or SandboxRuntimeException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                    LogPrepareFailed(ex.Message);
                    break;
                }
            }
        }
    }

    /// <summary>A namespace (made by a sleeping process, then held by a descriptor), a veth pair into it, addresses
    /// and routes, the sysctls a sandbox's root needs (low ports, ping; no IPv6; no TCP metrics kept for the next
    /// sandbox), and the slot's (empty) chains.</summary>
    private async Task<Slot?> PrepareOneAsync(CancellationToken cancellationToken)
    {
        if (NextFree() is not { } index)
        {
            return null;
        }

        var address = AddressOf(index);
        var name = NftRules.Interface(index);
        var holder = Process.Start(new ProcessStartInfo(Tools.Unshare, ["--net", "--", Tools.Sleep, "infinity"]) { UseShellExecute = false })
            ?? throw new InvalidOperationException("unshare did not start");
        try
        {
            // Recorded at once, so that if this server is killed the next start ends the holder with the slot's
            // leftovers (it would hold a namespace for ever).
            Directory.CreateDirectory(Path.GetDirectoryName(HolderFile(index))!);
            await File.WriteAllTextAsync(HolderFile(index), $"{holder.Id} {StartTime(holder.Id)}", cancellationToken);

            // The holder has its own namespace once its ns link differs from ours.
            var own = NamespaceOf(Environment.ProcessId);
            var waited = Stopwatch.StartNew();
            while (NamespaceOf(holder.Id) is not { } theirs || theirs == own)
            {
                if (waited.ElapsedMilliseconds > 5000 || holder.HasExited)
                {
                    throw new InvalidOperationException("unshare --net did not make a namespace");
                }

                await Task.Delay(1, cancellationToken);
            }

            var pid = holder.Id.ToString(CultureInfo.InvariantCulture);

            // The host's side in one batch. The slot is ours now, but its interface's name may not be free yet: a
            // crashed server's holder may keep the old one, and the kernel frees a dead namespace's interfaces (and
            // their names, even after they left /sys) a moment after its last process ended.
            for (var attempt = 0; ; attempt++)
            {
                if (await RunAsync(Tools.Ip, ["-batch", "-"], $"""
                    link add {name} type veth peer name eth0 netns {pid}
                    link set {name} up
                    route replace {address}/32 dev {name} scope link

                    """, cancellationToken, allowFailure: true) is not { } failed)
                {
                    break;
                }

                if (attempt == 100 || !failed.Contains("File exists", StringComparison.Ordinal))
                {
                    throw new SandboxRuntimeException("The sandbox's network could not be made. The server log has the details.", $"{name}: {failed}");
                }

                await RunAsync(Tools.Ip, ["link", "del", name], null, cancellationToken, allowFailure: true);
                await Task.Delay(20, cancellationToken);
            }

            await File.WriteAllTextAsync($"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "1", cancellationToken);

            // The sandbox's side: sysctls (they are per namespace, so written from inside it) and one ip batch.
            await RunAsync(Tools.Nsenter, [$"--net=/proc/{pid}/ns/net", "--", Tools.Sh, "-c", $"""
                set -e
                echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6
                echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start
                echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range
                echo 1 > /proc/sys/net/ipv4/tcp_no_metrics_save
                exec {Tools.Ip} -batch -
                """], $"""
                link set lo up
                link set eth0 up
                addr add {address}/32 dev eth0
                route add {_settings.Gateway} dev eth0 scope link
                route add default via {_settings.Gateway} dev eth0

                """, cancellationToken);
            var prepared = NftRules.AddSlot(index, address)
                + (_settings.PrepareOpen ? NftRules.Policy(index, SandboxNetwork.PublicInternet, ServiceAddress, _settings.ProxyPort) : "");
            if (await NftAsync(prepared, cancellationToken) is { } error)
            {
                throw new InvalidOperationException("nft: " + error);
            }

            _shared[index] = _settings.PrepareOpen;

            // Held by a descriptor from now on (dies with this server, unlike a process); the holder is done.
            var ns = File.OpenHandle($"/proc/{pid}/ns/net", FileMode.Open, FileAccess.Read);
            if (NamespaceOf(holder.Id) is not { } still || still == own)
            {
                ns.Dispose();
                throw new InvalidOperationException("the holder of a prepared namespace ended early");
            }

            holder.Kill();
            holder.WaitForExit(1000);
            holder.Dispose();
            File.Delete(HolderFile(index));
            return new Slot(index, address, ns);
        }
        catch
        {
            holder.Kill();
            holder.Dispose();
            File.Delete(HolderFile(index));
            await RunAsync(Tools.Ip, ["link", "del", name], null, CancellationToken.None, allowFailure: true);
            _claims.Release(index);
            throw;
        }
    }

    /// <summary>Two policies the kernel enforces the same way (offline ones all alike; others rule by rule).</summary>
    private static bool SamePolicy(SandboxNetwork a, SandboxNetwork b)
        => (!a.Online && !b.Online)
            || (a.Online == b.Online && a.Internet == b.Internet && a.ThroughProxy == b.ThroughProxy
                && a.Allow.SequenceEqual(b.Allow) && a.Deny.SequenceEqual(b.Deny));

    /// <summary>The network namespace a process is in ("net:[inode]"), or null when it cannot be read (the process
    /// is in the middle of an exec, or gone).</summary>
    private static string? NamespaceOf(int pid)
    {
        try
        {
            return File.ResolveLinkTarget($"/proc/{pid}/ns/net", false)?.ToString();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>A free slot number, claimed host-wide, or null when every one is taken.</summary>
    private int? NextFree()
    {
        try
        {
            return _claims.Allocate();
        }
        catch (SandboxRuntimeException)
        {
            return null;
        }
    }

    /// <summary>Every server holds <c>servers.lock</c> shared while it runs; the first one in, and the last one out,
    /// can take it exclusively (flock, through FileShare; non-blocking, so retried).</summary>
    private static async Task<FileStream> LockAsync(string path, FileShare share, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryLock(path, share) is { } locked)
            {
                return locked;
            }

            await Task.Delay(20, cancellationToken);
        }
    }

    private static FileStream? TryLock(string path, FileShare share)
    {
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, share);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Applies an nftables script in one transaction; null on success, else why it was refused.</summary>
    /// <remarks>Through the <c>nft</c> program, not libnftables in this process: libnftables 1.0.6 waits for the
    /// kernel's answers with <c>select()</c>, which aborts the process (glibc's FD_SETSIZE check) once its socket's
    /// descriptor number passes 1,023 — as a server with a thousand sandboxes (a pidfd each) would have it. A CI
    /// run's test host, which starts server after server, died of it.</remarks>
    private Task<string?> NftAsync(string script, CancellationToken cancellationToken) => RunAsync(Tools.Nft, ["-f", "-"], script, cancellationToken, allowFailure: true);

    /// <returns>Null on success, else the program's complaint (when <paramref name="allowFailure"/>).</returns>
    private static async Task<string?> RunAsync(string program, IReadOnlyList<string> args, string? input, CancellationToken cancellationToken, bool allowFailure = false)
    {
        var result = await ExternalProgram.RunAsync(program, args, cancellationToken, input);
        if (result.Succeeded)
        {
            return null;
        }

        var complaint = $"{Path.GetFileName(program)} exited {result.ExitCode}: {result.Stderr.Trim()}";
        return allowFailure ? complaint : throw new SandboxRuntimeException("The sandbox's network could not be made. The server log has the details.", complaint);
    }

    public void Dispose()
    {
        StopAsync().GetAwaiter().GetResult();
        _hostNamespace.Dispose();
    }

    [LoggerMessage(EventId = 1601, Level = LogLevel.Warning, Message = "Preparing a sandbox network failed: {Detail}")]
    private partial void LogPrepareFailed(string detail);

    [LoggerMessage(EventId = 1603, Level = LogLevel.Warning, Message = "The network namespace of slot {Slot} is not given to another sandbox: {Held} sockets are still held in it (a destroyed sandbox left them in flight); it ends when the kernel collects them")]
    private partial void LogNotReused(int slot, int held);

    [LoggerMessage(EventId = 1602, Level = LogLevel.Warning, Message = "Giving back sandbox networks failed (their slots are released; a later preparation rewrites their rules): {Detail}")]
    private partial void LogSettleFailed(string detail);

    /// <summary>Where a slot's holder is recorded (its pid and start time) while it holds the namespace.</summary>
    private string HolderFile(int slot) => Path.Combine(_settings.StateDirectory, "holders", slot.ToString(CultureInfo.InvariantCulture));

    /// <summary>Ends the holder a killed server left, if it is still that process (pid and start time), and forgets it.</summary>
    private static void EndHolder(string file)
    {
        try
        {
            var recorded = File.ReadAllText(file).Split(' ');
            if (recorded.Length == 2 && int.TryParse(recorded[0], out var pid) && StartTime(pid) == recorded[1])
            {
                KillProcess(pid);
            }
        }
        catch (IOException)
        {
        }

        // Its directory may be missing too: an interface of ours with no holder recorded on this /run.
        if (File.Exists(file))
        {
            File.Delete(file);
        }
    }

    private static void KillProcess(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
        }
    }

    /// <summary>A process's start time in clock ticks since boot (field 22 of /proc/pid/stat), or "" when it is gone:
    /// with the pid, it names one process even after pids wrap.</summary>
    private static string StartTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19];
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary>A prepared network: its number, its sandbox's address, and this server's descriptor of its
    /// namespace, which keeps the namespace (and its interface, address and routes) while the server wants it.</summary>
    public sealed class Slot(int index, IPAddress address, SafeHandle ns) : IDisposable
    {
        public int Index { get; } = index;

        public IPAddress Address { get; } = address;

        internal SafeHandle Namespace { get; } = ns;

        /// <summary>The namespace to join, for the runtime (valid while this slot is not disposed).</summary>
        public string NamespacePath { get; } = $"/proc/{Environment.ProcessId}/fd/{ns.DangerousGetHandle()}";

        /// <summary>Closes the descriptor: the namespace ends once no sandbox's process is in it either.</summary>
        public void Dispose() => Namespace.Dispose();
    }

    /// <summary>Host programs, by absolute path.</summary>
    private static class Tools
    {
        public static readonly string Nft = "/usr/sbin/nft";
        public static readonly string Ip = File.Exists("/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip";
        public static readonly string Unshare = "/usr/bin/unshare";
        public static readonly string Nsenter = "/usr/bin/nsenter";
        public static readonly string Sleep = "/bin/sleep";
        public static readonly string Sh = "/bin/sh";
    }
}

/// <summary>How the host's side of sandbox networking is laid out.</summary>
/// <param name="Subnet">Sandboxes' addresses (one each, routed; masqueraded on the way out).</param>
/// <param name="Gateway">Sandboxes' default gateway, on the host: the server's resolver and proxy listen there.</param>
/// <param name="StateDirectory">Where Cordon remembers what it changed on the host (under /run).</param>
/// <param name="PrepareOpen">Prepared slots come with the public-internet policy (else with none).</param>
internal sealed record NetworkSettings(IPNetwork Subnet, IPAddress Gateway, int ProxyPort, int Prepared, int MaxSlots, string StateDirectory, bool PrepareOpen = false);
