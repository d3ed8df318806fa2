using System.Runtime.ExceptionServices;
using Cordon.Agent.Interop;
using Cordon.Protocol;

namespace Cordon.Agent;

/// <summary>Runs file operations with the rights of the user they are done for: on a thread of their own that
/// takes the user's file-system identity and then ends, so a file the user may not read is not read, a directory
/// the user may not write is not written, and a symlink the user planted leads nowhere the user could not go
/// (writing through <c>~/n → /etc/passwd</c> as <c>user</c> fails as it would in a shell).</summary>
/// <remarks>The operation must be synchronous: an await would continue on another thread, with the agent's own
/// identity. What it opens stays usable afterwards from any thread, as an open file does.</remarks>
internal static class UserThread
{
    public static Task<T> RunAsync<T>(UserIdentity user, Func<T> operation)
    {
        if (user.IsRoot)
        {
            return Task.FromResult(operation());
        }

        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                if (!Libc.BecomeFileUser(user.Uid, user.Gid, user.Groups))
                {
                    throw new AgentException(AgentErrorCodes.Internal, $"The agent could not act as '{user.Name}' ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(System.Runtime.InteropServices.Marshal.GetLastPInvokeError())}).");
                }

                done.SetResult(operation());
            }
            catch (Exception ex)
            {
                done.SetException(ExceptionDispatchInfo.Capture(ex).SourceException);
            }
        }, maxStackSize: 512 * 1024)
        {
            IsBackground = true,
            Name = "cordon-as-user",
        };
        thread.Start();
        return done.Task;
    }

    public static Task RunAsync(UserIdentity user, Action operation) => RunAsync(user, () =>
    {
        operation();
        return true;
    });
}
