using System.Threading.Channels;
using Cordon.Protocol;

namespace Cordon.Agent.Code;

internal sealed partial class CodeContext
{
    /// <summary>The events of one run. With markers (Bash), the end waits until both output streams passed
    /// their marker, so every byte the run printed reaches the client before its end.</summary>
    private sealed class RunState(int markers)
    {
        private readonly Lock _lock = new();
        private int _markers = markers;
        private CodeEvent? _pendingEnd;
        private bool _ended;

        public Channel<CodeEvent> Events { get; } = Channel.CreateBounded<CodeEvent>(new BoundedChannelOptions(1024) { SingleReader = true });

        public async ValueTask DeliverAsync(CodeEvent e)
        {
            if (e.Type == CodeEventTypes.End)
            {
                await EndAsync(e, waitForMarkers: true);
                return;
            }

            await WriteAsync(e);
        }

        /// <summary>Writes unless the run already ended (then the event has nobody to go to).</summary>
        private async ValueTask WriteAsync(CodeEvent e)
        {
            while (await Events.Writer.WaitToWriteAsync())
            {
                if (Events.Writer.TryWrite(e))
                {
                    return;
                }
            }
        }

        public async ValueTask MarkerAsync()
        {
            CodeEvent? end;
            lock (_lock)
            {
                _markers--;
                end = null;
                if (_markers <= 0)
                {
                    end = _pendingEnd;
                    _pendingEnd = null;
                }
            }

            if (end is not null)
            {
                await EndAsync(end, waitForMarkers: false);
            }
        }

        /// <summary>Ends the run now (the interpreter died), whatever markers are missing.</summary>
        public ValueTask EndAsync(CodeEvent end) => EndAsync(end, waitForMarkers: false);

        private async ValueTask EndAsync(CodeEvent end, bool waitForMarkers)
        {
            lock (_lock)
            {
                if (_ended)
                {
                    return;
                }

                if (waitForMarkers && _markers > 0)
                {
                    _pendingEnd = end;

                    // Code that closed its own stdout never prints the marker: do not wait for it forever.
                    _ = Task.Delay(1000).ContinueWith(_ => MarkerTimeoutAsync().AsTask(), TaskScheduler.Default);
                    return;
                }

                _ended = true;
            }

            await WriteAsync(end);
            Events.Writer.TryComplete();
        }

        private async ValueTask MarkerTimeoutAsync()
        {
            CodeEvent? end;
            lock (_lock)
            {
                end = _pendingEnd;
                _pendingEnd = null;
            }

            if (end is not null)
            {
                await EndAsync(end, waitForMarkers: false);
            }
        }
    }
}
