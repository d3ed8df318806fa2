using System.Runtime.InteropServices;

namespace Cordon.Runtime.Interop;

/// <summary>Attaches a file to a free loop device with LOOP_CONFIGURE and autoclear, so unmounting the file
/// system on it is all it takes to release the device.</summary>
internal static unsafe partial class LoopDevice
{
    private const ulong LOOP_CTL_GET_FREE = 0x4C82;
    private const ulong LOOP_CONFIGURE = 0x4C0A;
    private const uint LO_FLAGS_AUTOCLEAR = 4;
    private const int EBUSY = 16;
    private const int O_RDWR = 2;
    private const int O_CLOEXEC = 0x80000;

    [StructLayout(LayoutKind.Sequential)]
    private struct LoopInfo64
    {
        public ulong Device;
        public ulong Inode;
        public ulong Rdevice;
        public ulong Offset;
        public ulong SizeLimit;
        public uint Number;
        public uint EncryptType;
        public uint EncryptKeySize;
        public uint Flags;
        public fixed byte FileName[64];
        public fixed byte CryptName[64];
        public fixed byte EncryptKey[32];
        public fixed ulong Init[2];
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct LoopConfig
    {
        public uint Fd;
        public uint BlockSize;
        public LoopInfo64 Info;
        public fixed ulong Reserved[8];
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, ulong request, nint argument);

    /// <summary>Mounts the file system in <paramref name="image"/> at <paramref name="mountPoint"/> through a loop
    /// device, which the mount then holds (unmounting releases it).</summary>
    /// <exception cref="IOException">The device could not be attached or the kernel refused the mount.</exception>
    public static void Mount(string image, string mountPoint, string type, ulong flags, string data = "")
    {
        var (device, fd) = Attach(image);
        try
        {
            if (Syscalls.mount(device, mountPoint, type, flags, data) != 0)
            {
                throw new IOException($"mount {type} {device} ({image}) at {mountPoint}: {Syscalls.LastError()}");
            }
        }
        finally
        {
            Syscalls.close(fd); // the mount holds the device now (autoclear)
        }
    }

    /// <summary>Attaches <paramref name="backingFile"/>; returns the device path (e.g. /dev/loop7) and an open
    /// descriptor of it.</summary>
    /// <remarks>Autoclear detaches the device on its last close: keep the descriptor open until the file
    /// system on it is mounted, then close it; unmounting then releases the device.</remarks>
    public static (string Path, int Fd) Attach(string backingFile)
    {
        var control = Syscalls.open("/dev/loop-control", O_RDWR | O_CLOEXEC, 0);
        if (control < 0)
        {
            throw new IOException($"/dev/loop-control: {Syscalls.LastError()} (is the loop module loaded?)");
        }

        var backing = Syscalls.open(backingFile, O_RDWR | O_CLOEXEC, 0);
        if (backing < 0)
        {
            Syscalls.close(control);
            throw new IOException($"{backingFile}: {Syscalls.LastError()}");
        }

        try
        {
            // Another creator may take the same free device between GET_FREE and CONFIGURE: try again.
            for (var attempt = 0; attempt < 64; attempt++)
            {
                var number = ioctl(control, LOOP_CTL_GET_FREE, 0);
                if (number < 0)
                {
                    throw new IOException($"LOOP_CTL_GET_FREE: {Syscalls.LastError()}");
                }

                var path = $"/dev/loop{number}";
                var device = Syscalls.open(path, O_RDWR | O_CLOEXEC, 0);
                if (device < 0)
                {
                    throw new IOException($"{path}: {Syscalls.LastError()}");
                }

                var config = new LoopConfig { Fd = (uint)backing };
                config.Info.Flags = LO_FLAGS_AUTOCLEAR;
                if (ioctl(device, LOOP_CONFIGURE, (nint)(&config)) == 0)
                {
                    return (path, device);
                }

                var errno = Marshal.GetLastPInvokeError();
                Syscalls.close(device);
                if (errno != EBUSY)
                {
                    throw new IOException($"LOOP_CONFIGURE on {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
                }
            }

            throw new IOException("No free loop device could be configured.");
        }
        finally
        {
            Syscalls.close(backing);
            Syscalls.close(control);
        }
    }
}
