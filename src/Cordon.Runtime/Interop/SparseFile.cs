using System.Buffers;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Cordon.Runtime.Interop;

/// <summary>Copies a sparse file by its data extents only (SEEK_DATA/SEEK_HOLE): a freshly formatted 2 GiB
/// image holds about 1 MiB of data, and copying it costs that much, not 2 GiB.</summary>
internal static partial class SparseFile
{
    private const int SEEK_DATA = 3;
    private const int SEEK_HOLE = 4;
    private const int ENXIO = 6;

    [LibraryImport("libc", SetLastError = true)]
    private static partial long lseek(nint fd, long offset, int whence);

    public static void Copy(string source, string destination)
    {
        using var from = File.OpenHandle(source, FileMode.Open, FileAccess.Read);
        using var to = File.OpenHandle(destination, FileMode.CreateNew, FileAccess.Write);
        var length = RandomAccess.GetLength(from);

        // The size first: set after the data, it made XFS write that data out at once (a flush of ~1 MiB per copy).
        RandomAccess.SetLength(to, length);
        // Pooled: a new 1 MiB array per sandbox root lands on the large object heap and starts a full collection.
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            CopyExtents(from, to, length, buffer, source);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void CopyExtents(SafeFileHandle from, SafeFileHandle to, long length, byte[] buffer, string source)
    {
        long offset = 0;
        while (offset < length)
        {
            var dataStart = lseek(from.DangerousGetHandle(), offset, SEEK_DATA);
            if (dataStart < 0)
            {
                if (Marshal.GetLastPInvokeError() == ENXIO)
                {
                    break; // only a hole remains
                }

                throw new IOException($"SEEK_DATA on {source}: {Syscalls.LastError()}");
            }

            var dataEnd = lseek(from.DangerousGetHandle(), dataStart, SEEK_HOLE);
            for (var position = dataStart; position < dataEnd;)
            {
                var n = RandomAccess.Read(from, buffer.AsSpan(0, (int)Math.Min(buffer.Length, dataEnd - position)), position);
                RandomAccess.Write(to, buffer.AsSpan(0, n), position);
                position += n;
            }

            offset = dataEnd;
        }
    }
}
