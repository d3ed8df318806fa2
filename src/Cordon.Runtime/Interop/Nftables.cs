using System.Runtime.InteropServices;

namespace Cordon.Runtime.Interop;

/// <summary>nftables through its own library, libnftables (the <c>nft</c> program is a front end of it), in this
/// process: the same commands as <c>nft -f -</c> takes, without starting a program for each.</summary>
/// <remarks>
/// A program per change cost ~4.5 ms of CPU and ~18 ms of wall time (starting <c>nft</c> and loading its eight
/// libraries); the library does the same transaction in ~0.15 ms. That was one per create with a policy of its own
/// and one per batch of destroyed sandboxes. One context serves every caller, one at a time. Its netlink socket is
/// opened with it, so it stays in the network namespace of the thread that opened it whatever namespace a thread
/// that uses it is in. nftables keeps its cache in the context and refreshes it when the ruleset's generation
/// changes (another server, an operator's <c>nft</c>).
/// </remarks>
internal sealed partial class Nftables : IDisposable
{
    private const string Library = "libnftables.so.1";
    private const uint OutputJson = 1 << 4;

    private readonly Lock _lock = new();
    private nint _context;

    private Nftables(nint context) => _context = context;

    /// <summary>Opens a context in the calling thread's network namespace; null when libnftables is not installed
    /// (Debian package libnftables1, which nftables depends on).</summary>
    public static Nftables? Open()
    {
        try
        {
            var context = nft_ctx_new(0);
            if (context == 0)
            {
                return null;
            }

            nft_ctx_buffer_output(context);
            nft_ctx_buffer_error(context);
            return new Nftables(context);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Runs commands (a script, as <c>nft -f</c> reads it) in one transaction.</summary>
    /// <returns>Null when it was applied, else nftables' complaint (then nothing of it was).</returns>
    public string? Apply(string commands)
    {
        var (succeeded, _, error) = Run(commands, json: false);
        return succeeded ? null : error;
    }

    /// <summary>Runs commands and returns what they print (as JSON when <paramref name="json"/>, as <c>nft -j</c>).</summary>
    public (bool Succeeded, string Output, string Error) Run(string commands, bool json)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_context == 0, this);
            nft_ctx_output_set_flags(_context, json ? OutputJson : 0);
            var result = nft_run_cmd_from_buffer(_context, commands);

            // Each read takes what was buffered since the last one.
            var output = Marshal.PtrToStringUTF8(nft_ctx_get_output_buffer(_context)) ?? "";
            var error = Marshal.PtrToStringUTF8(nft_ctx_get_error_buffer(_context)) ?? "";
            return (result == 0, output, error.Trim());
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_context != 0)
            {
                nft_ctx_free(_context);
                _context = 0;
            }
        }
    }

    [LibraryImport(Library)]
    private static partial nint nft_ctx_new(uint flags);

    [LibraryImport(Library)]
    private static partial void nft_ctx_free(nint context);

    [LibraryImport(Library)]
    private static partial int nft_ctx_buffer_output(nint context);

    [LibraryImport(Library)]
    private static partial int nft_ctx_buffer_error(nint context);

    [LibraryImport(Library)]
    private static partial nint nft_ctx_get_output_buffer(nint context);

    [LibraryImport(Library)]
    private static partial nint nft_ctx_get_error_buffer(nint context);

    [LibraryImport(Library)]
    private static partial void nft_ctx_output_set_flags(nint context, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int nft_run_cmd_from_buffer(nint context, string buffer);
}
