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

// PID 1 ignores the signals code in the sandbox could send it (the kernel already drops those without a handler
// and never delivers SIGKILL or SIGSTOP from inside) and a closed pipe's. The server stops a sandbox with SIGKILL
// from outside. Set with signal(2), not PosixSignalRegistration: that starts the runtime's signal thread, one
// more idle thread in every sandbox.
Libc.IgnoreSignals(Libc.SIGTERM, Libc.SIGINT, Libc.SIGQUIT, Libc.SIGHUP, Libc.SIGPIPE);
Libc.UseOneMallocArena();

var environment = new SandboxEnvironment();
var reaper = new ProcessReaper();

// Accept first: the server's first request is already waiting, and is served inline up to its first wait. Later
// ones are served on pool threads.
var commands = new CommandRunner(reaper, environment);
var server = new AgentServer(environment, commands, new Cordon.Agent.Code.CodeContexts(commands, environment), new FileService(environment));
var serving = server.RunAsync(CancellationToken.None);
_ = serving.ContinueWith(
    static failed =>
    {
        Console.Error.WriteLine($"cordon-agent: stopped serving: {failed.Exception?.InnerException?.Message}");
        Environment.Exit(1);
    },
    CancellationToken.None,
    TaskContinuationOptions.OnlyOnFaulted,
    TaskScheduler.Default);

// Until the first command arrives, a pool thread does that command's one-time work.
ThreadPool.UnsafeQueueUserWorkItem(static _ => FirstUse.Prepare(), null);

// The main thread reaps: one idle thread fewer in every sandbox than a thread of its own, and none to start on a
// first command's time. A child that exits before the loop starts stays a zombie until it does.
reaper.Run();
return 0;
