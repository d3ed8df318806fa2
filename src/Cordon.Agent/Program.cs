using System.Runtime.InteropServices;
using Cordon.Agent;
using Cordon.Agent.Interop;

if (args.Length > 0 && args[0] == ExecHelper.Verb)
{
    return ExecHelper.Run(args);
}

if (args.Length > 0 && args[0] == "--version")
{
    Console.WriteLine(AgentServer.Version);
    return 0;
}

// PID 1 of the sandbox: files the agent creates are the sandbox's root's, readable as the image intends.
Libc.umask(0b000_010_010); // 022

// SECURITY: not dumpable, so root in the sandbox cannot take the agent's descriptors (its control socket) with
// pidfd_getfd, read its memory, or attach to it: those need CAP_SYS_PTRACE for a process that is not dumpable.
// Commands are dumpable again from their execve on.
Libc.MakeNotDumpable();
var environment = new SandboxEnvironment();
var reaper = new ProcessReaper();
using var stopping = new CancellationTokenSource();

// The reaper's thread starts before the first request is read: started after it (as it once was), its creation
// fell between the first command's spawn and its exit, on that command's time (~0.5 ms of a sandbox's first
// command, measured with timestamps in a sandbox).
reaper.Start();

// Then accept: the server's first request is already waiting. The rest of the set-up happens while it is
// served. (Until the handler below exists, PID 1 ignores SIGTERM from outside, as the kernel does for a
// namespace's init without a handler; destroy uses SIGKILL anyway.)
var commands = new CommandRunner(reaper, environment);
var server = new AgentServer(environment, commands, new Cordon.Agent.Code.CodeContexts(commands, environment), new FileService(environment));
var serving = server.RunAsync(stopping.Token);

// Accepting is armed (a request already waiting was served above, later ones are served on pool threads):
// until the first command arrives, the main thread does that command's one-time work.
FirstUse.Prepare();

// PID 1 ignores the signals code in the sandbox could send it (the kernel already drops those without a handler
// and never delivers SIGKILL or SIGSTOP from inside; .NET's own handling would end the agent on SIGTERM). The
// server stops a sandbox with SIGKILL from outside.
PosixSignalRegistration[] ignored =
[
    .. new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGQUIT, PosixSignal.SIGHUP }
        .Select(signal => PosixSignalRegistration.Create(signal, context => context.Cancel = true)),
];

try
{
    await serving;
}
catch (OperationCanceledException)
{
}

GC.KeepAlive(ignored);
return 0;
