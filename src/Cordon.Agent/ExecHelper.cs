using Cordon.Agent.Interop;

namespace Cordon.Agent;

/// <summary>The agent re-executed as <c>cordon-agent __exec uid gid groups program -- argv…</c>: drops to
/// the command's user, then becomes the command. posix_spawn cannot change identity, and a forked
/// managed runtime must not run code, so identity changes happen in this fresh process.</summary>
internal static class ExecHelper
{
    public const string Verb = "__exec";

    public static List<string> BuildArguments(UserIdentity user, string program, IReadOnlyList<string> argv)
    {
        var args = new List<string> { "cordon-agent", Verb, user.Uid.ToString(), user.Gid.ToString(), string.Join(',', user.Groups), program, "--" };
        args.AddRange(argv);
        return args;
    }

    public static int Run(string[] args)
    {
        // args: __exec uid gid groups program -- argv...
        if (args.Length < 7 || args[5] != "--")
        {
            Console.Error.WriteLine("cordon-agent __exec: malformed arguments");
            return 126;
        }

        var uid = uint.Parse(args[1]);
        var gid = uint.Parse(args[2]);
        var groups = args[3].Split(',', StringSplitOptions.RemoveEmptyEntries).Select(uint.Parse).ToArray();
        if (!Libc.SwitchUser(uid, gid, groups))
        {
            Console.Error.WriteLine($"cordon-agent: cannot switch to uid {uid}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}");
            return 126;
        }

        var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => $"{e.Key}={e.Value}").ToList();
        try
        {
            Spawner.Exec(args[4], args[6..], env);
        }
        catch (SpawnException ex)
        {
            Console.Error.WriteLine($"{args[6]}: {ex.Message}");
            return ex.Errno == 2 ? 127 : 126;
        }

        return 126;
    }
}
