using System.Net.Sockets;
using System.Text;
using Cordon.Protocol;

namespace Cordon.Agent.Code;

internal sealed partial class CodeContext
{
    /// <summary>One interpreter process and its connections.</summary>
    private sealed class Instance(int pid, Task<int> exit, int channel, int stdout, int stderr) : IDisposable
    {
        private const int DiagnosticsBytes = 2048;
        private readonly Queue<byte> _diagnostics = new();

        public int Pid { get; } = pid;

        public Task<int> Exit { get; } = exit;

        public Socket Channel { get; } = new(new SafeSocketHandle(channel, ownsHandle: true));

        public Socket Stdout { get; } = new(new SafeSocketHandle(stdout, ownsHandle: true));

        public Socket Stderr { get; } = new(new SafeSocketHandle(stderr, ownsHandle: true));

        public TaskCompletionSource<CodeEvent> Ready { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Pumps { get; set; } = Task.CompletedTask;

        public string? Kernel { get; set; }

        /// <summary>The driver marks the end of each run's output on stdout and stderr (Bash, and Python run by the driver itself).</summary>
        public bool UsesMarkers { get; set; }

        /// <summary><c>signal</c> (SIGINT to the driver), <c>group</c> (SIGINT to its process group) or <c>message</c> (tell the driver).</summary>
        public string InterruptMode { get; set; } = "signal";

        public void AddDiagnostics(ReadOnlySpan<byte> bytes)
        {
            lock (_diagnostics)
            {
                foreach (var b in bytes)
                {
                    _diagnostics.Enqueue(b);
                }

                while (_diagnostics.Count > DiagnosticsBytes)
                {
                    _diagnostics.Dequeue();
                }
            }
        }

        public string DiagnosticsSuffix()
        {
            lock (_diagnostics)
            {
                var text = Encoding.UTF8.GetString([.. _diagnostics]).Trim();
                return text.Length == 0 ? "" : " Its last words: " + text;
            }
        }

        public void Dispose()
        {
            Channel.Dispose();
            Stdout.Dispose();
            Stderr.Dispose();
        }
    }
}
