namespace Cordon.Runtime.Interop;

/// <summary>Makes a read-only, id-mapped view of a directory: files owned by host root appear owned by the
/// sandbox's root, so one shared image serves sandboxes that each have their own host id range.</summary>
/// <remarks>The view is read-only on purpose: a writable idmapped lower would let the sandbox's host uid
/// write root-owned files into the shared image.</remarks>
internal static class IdmappedMount
{
    /// <summary>Mounts an id-mapped, read-only, nosuid-free clone of <paramref name="source"/> at <paramref name="target"/>.</summary>
    /// <param name="userNamespaceFd">A user namespace whose mapping the view applies.</param>
    /// <exception cref="IOException">The kernel refused; the message names the step.</exception>
    /// <param name="readOnly">False only for a volume: what the sandbox writes lands with its ids mapped back.</param>
    public static void Mount(string source, string target, int userNamespaceFd, bool readOnly = true)
    {
        var tree = Syscalls.OpenTree(source, Syscalls.OPEN_TREE_CLONE | Syscalls.OPEN_TREE_CLOEXEC);
        if (tree < 0)
        {
            throw new IOException($"open_tree({source}) failed: {Syscalls.LastError()}");
        }

        try
        {
            var attr = new Syscalls.MountAttr
            {
                AttrSet = Syscalls.MOUNT_ATTR_IDMAP | (readOnly ? Syscalls.MOUNT_ATTR_RDONLY : 0) | Syscalls.MOUNT_ATTR_NODEV | Syscalls.MOUNT_ATTR_NOSUID,
                UsernsFd = (ulong)userNamespaceFd,
            };
            if (Syscalls.MountSetattr(tree, Syscalls.AT_EMPTY_PATH, attr) != 0)
            {
                throw new IOException($"mount_setattr(idmap) on {source} failed: {Syscalls.LastError()}. Idmapped mounts need Linux 5.12+ and a file system that supports them.");
            }

            if (Syscalls.MoveMount(tree, target) != 0)
            {
                throw new IOException($"move_mount to {target} failed: {Syscalls.LastError()}");
            }
        }
        finally
        {
            Syscalls.close(tree);
        }
    }
}
