using System.Collections.Concurrent;
using System.Reflection;
using Microsoft.Extensions.Logging;
using Xunit;
using Xunit.v3;

[assembly: Cordon.Testing.ServerLogInOutput]

namespace Cordon.Testing;

/// <summary>The last warnings and errors of every server this test process started, so a failing test can say what
/// the server saw (CI shows a failure's message and output, never a server's console).</summary>
public sealed class ServerLog : ILoggerProvider
{
    /// <summary>Entries kept per server; the oldest go first.</summary>
    private const int Kept = 200;

    private static readonly ConcurrentBag<ServerLog> All = [];

    private readonly ConcurrentQueue<(DateTimeOffset At, string Text)> _entries = new();
    private readonly string _server;

    public ServerLog(string server)
    {
        _server = server;
        All.Add(this);
    }

    /// <summary>Every server's entries since <paramref name="since"/>, oldest first, at most <paramref name="most"/>.</summary>
    public static IReadOnlyList<string> Since(DateTimeOffset since, int most = 60)
        => [.. All.SelectMany(log => log._entries.Where(e => e.At >= since).Select(e => (e.At, Text: $"[{log._server}] {e.Text}")))
            .OrderBy(e => e.At).TakeLast(most).Select(e => e.Text)];

    public void Add(string text)
    {
        _entries.Enqueue((DateTimeOffset.UtcNow, text));
        while (_entries.Count > Kept && _entries.TryDequeue(out _))
        {
        }
    }

    /// <summary>A line of a server's console (one entry per line: <c>HH:mm:ss warn: Category[id] message</c>); only
    /// warnings and worse are kept.</summary>
    public void AddConsoleLine(string? line)
    {
        if (line is not null && (line.Contains(" warn: ", StringComparison.Ordinal) || line.Contains(" fail: ", StringComparison.Ordinal) || line.Contains(" crit: ", StringComparison.Ordinal)))
        {
            Add(line);
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(ServerLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                log.Add($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {logLevel}: {category}[{eventId.Id}] {formatter(state, exception)}{(exception is null ? "" : " — " + exception.Message)}");
            }
        }
    }
}

/// <summary>Writes the servers' warnings and errors logged while a test ran to its output, which a failed test's
/// report shows.</summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class ServerLogInOutputAttribute : BeforeAfterTestAttribute
{
    private static readonly AsyncLocal<DateTimeOffset> Started = new();

    public override void Before(MethodInfo methodUnderTest, IXunitTest test) => Started.Value = DateTimeOffset.UtcNow;

    public override void After(MethodInfo methodUnderTest, IXunitTest test)
    {
        var entries = ServerLog.Since(Started.Value);
        if (entries.Count > 0 && TestContext.Current.TestOutputHelper is { } output)
        {
            output.WriteLine("Server warnings and errors while this test ran (every server of this test process):");
            foreach (var entry in entries)
            {
                output.WriteLine(entry);
            }
        }
    }
}
