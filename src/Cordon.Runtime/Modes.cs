namespace Cordon.Runtime;

/// <summary>The file modes Cordon gives what it keeps on the host. Nothing of a sandbox, an image or the state is
/// readable by other host users (docs/threat-model.md).</summary>
public static class Modes
{
    /// <summary>0700: directories only root enters (image layers, staging, templates, the runtime's state).</summary>
    public const UnixFileMode RootOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>0600: files only root reads (the database, config.json, layer images, agent sockets).</summary>
    public const UnixFileMode RootReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>0644: a file bind-mounted read-only into a sandbox (its users are "others" to a root-owned file); its
    /// directory keeps host users out.</summary>
    public const UnixFileMode WorldReadable = RootReadWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>0711: directories every uid may traverse but not list, on the way to a directory of its own.</summary>
    public const UnixFileMode TraverseOnly = RootOnly | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>0710: a sandbox's directory, which its own host gid traverses.</summary>
    public const UnixFileMode OwnerAllGroupTraverse = RootOnly | UnixFileMode.GroupExecute;
}
