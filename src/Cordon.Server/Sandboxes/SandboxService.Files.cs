using Cordon.Protocol;
using Cordon.Server.Auth;

namespace Cordon.Server.Sandboxes;

/// <summary>Files in a sandbox, served by its agent. Each operation is done with the rights of <c>user</c> (a name or
/// uid in the sandbox), the sandbox's default user when null: it reads, writes, follows links and lists only where
/// that user may.</summary>
public sealed partial class SandboxService
{
    /// <summary>Opens a file for reading; its content streams from the sandbox as it is read.</summary>
    public async Task<SandboxFile> ReadFileAsync(CallerIdentity caller, string id, string? path, string? user, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        ValidateUser(user);
        return new SandboxFile(await AgentFailures.CallAsync(() => client.ReadFileAsync(valid, user, cancellationToken)));
    }

    /// <summary>Writes a file from <paramref name="content"/> (any size); the old file is replaced only once all of it
    /// arrived. Missing parent directories are created.</summary>
    /// <param name="mode">Permission bits (0–07777); the default (0644) when null.</param>
    /// <param name="user">Who writes, and owns a new file.</param>
    public Task<FileEntry> WriteFileAsync(CallerIdentity caller, string id, string? path, Stream content, int? mode, string? user, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        Require(mode is null or (>= 0 and <= 0xFFF), "mode must be a permission value between 0 and 07777.");
        ValidateUser(user);
        return AgentFailures.CallAsync(() => client.WriteFileAsync(new WriteFileRequest { Path = valid, Mode = mode, User = user }, content, cancellationToken));
    }

    /// <summary>A directory's entries, down to <paramref name="depth"/> levels.</summary>
    public async Task<IReadOnlyList<FileEntry>> ListFilesAsync(CallerIdentity caller, string id, string? path, int depth, string? user, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        Require(depth is >= 1 and <= 32, $"depth must be between 1 and 32; {depth} was asked.");
        ValidateUser(user);
        return (await AgentFailures.CallAsync(() => client.ListAsync(valid, depth, user, cancellationToken))).Entries;
    }

    public Task<FileEntry> StatFileAsync(CallerIdentity caller, string id, string? path, string? user, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        ValidateUser(user);
        return AgentFailures.CallAsync(() => client.StatAsync(valid, user, cancellationToken));
    }

    /// <summary>Creates a directory and its parents; an existing directory is fine.</summary>
    public Task<FileEntry> MakeDirAsync(CallerIdentity caller, string id, string? path, string? user, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        ValidateUser(user);
        return AgentFailures.CallAsync(() => client.MakeDirAsync(valid, user, cancellationToken));
    }

    /// <summary>Removes a file, or a directory with everything in it.</summary>
    public Task RemoveFileAsync(CallerIdentity caller, string id, string? path, string? user, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var valid = ValidPath(path);
        ValidateUser(user);
        return AgentFailures.CallAsync(() => client.RemoveAsync(valid, user, cancellationToken));
    }

    public Task<FileEntry> RenameFileAsync(CallerIdentity caller, string id, string? from, string? to, string? user, CancellationToken cancellationToken)
    {
        var client = Agent(caller, id);
        var validFrom = ValidPath(from);
        var validTo = ValidPath(to);
        ValidateUser(user);
        return AgentFailures.CallAsync(() => client.RenameAsync(validFrom, validTo, user, cancellationToken));
    }
}
