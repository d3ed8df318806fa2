namespace Cordon.Runtime.Oci;

/// <summary>The system calls a sandbox may make: Docker's default allow-list in intent, tightened.</summary>
/// <remarks>
/// Everything not listed fails with EPERM. Left out on purpose, because they break isolation or widen the
/// kernel's attack surface for no use a sandbox has: mount and the new mount API, pivot_root, unshare,
/// setns, new namespaces through clone flags, ptrace and process_vm_*, kexec, modules, bpf, keyctl and
/// friends, perf_event_open, userfaultfd, open_by_handle_at, swap, reboot, clock changes, quotactl,
/// iopl/ioperm and 32-bit entry points (any non-x86_64 syscall kills the process), pidfd_getfd (taking another
/// process's descriptors; Docker allows it only with CAP_SYS_PTRACE). clone3 answers ENOSYS so libc falls back
/// to clone, whose flags can be inspected. socket opens only <see cref="AllowedSocketFamilies"/> and
/// socketpair only AF_UNIX; other families answer EAFNOSUPPORT, as on a kernel without them, so programs fall
/// back: AF_VSOCK is not network-namespaced (it reaches the host's and other sandboxes' vsock listeners), AF_ALG
/// has been the entry point of page-cache-write kernel bugs, and AF_PACKET, AF_KEY and the rest serve no sandbox.
/// </remarks>
public static class SeccompPolicy
{
    /// <summary>Namespace flags a sandboxed process may not pass to clone.</summary>
    public const ulong ForbiddenCloneFlags =
        0x00020000 /* NEWNS */ | 0x02000000 /* NEWCGROUP */ | 0x04000000 /* NEWUTS */ | 0x08000000 /* NEWIPC */ |
        0x10000000 /* NEWUSER */ | 0x20000000 /* NEWPID */ | 0x40000000 /* NEWNET */ | 0x00000080 /* NEWTIME */;

    public const int Eperm = 1;
    public const int Enosys = 38;
    public const int Eafnosupport = 97;

    /// <summary>The address families <c>socket</c> may open: AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK (which
    /// <c>ip</c> and glibc's interface queries use). Ascending.</summary>
    public static readonly IReadOnlyList<ulong> AllowedSocketFamilies = [1, 2, 10, 16];

    /// <summary>The one family <c>socketpair</c> may use: AF_UNIX.</summary>
    public const ulong UnixFamily = 1;

    /// <summary>The family values that answer EAFNOSUPPORT: every one below the last allowed family that is not
    /// allowed (each an equality rule), and everything above it (one rule). seccomp takes the strictest action
    /// that matches, so "deny all but these" is written as rules for what is denied.</summary>
    public static (IReadOnlyList<ulong> Below, ulong AtOrAbove) RefusedFamilies(IReadOnlyList<ulong> allowed)
        => ([.. Enumerable.Range(0, (int)allowed[^1]).Select(v => (ulong)v).Where(v => !allowed.Contains(v))], allowed[^1] + 1);

    /// <summary>Allowed without conditions.</summary>
    public static readonly IReadOnlyList<string> Allowed =
    [
        "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk", "cachestat", "capget", "capset",
        "chdir", "chmod", "chown", "clock_adjtime", "clock_getres", "clock_gettime", "clock_nanosleep", "close",
        "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
        "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "execve", "execveat", "exit",
        "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate", "fanotify_mark", "fchdir", "fchmod",
        "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
        "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex", "futex_requeue", "futex_wait",
        "futex_waitv", "futex_wake", "futimesat", "get_mempolicy", "get_robust_list", "get_thread_area", "getcpu",
        "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid", "getgroups", "getitimer", "getpeername",
        "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit",
        "getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getxattr",
        "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy",
        "io_getevents", "io_pgetevents", "io_setup", "io_submit", "ioctl", "ioprio_get", "ioprio_set", "kill",
        "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lgetxattr", "link",
        "linkat", "listen", "listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise",
        "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat",
        "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
        "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall",
        "munmap", "nanosleep", "newfstatat", "open", "openat", "openat2", "pause",
        "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
        "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pwrite64", "pwritev",
        "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg",
        "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
        "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
        "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
        "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
        "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
        "semop", "semtimedop", "send", "sendfile", "sendmmsg", "sendmsg", "sendto", "set_mempolicy", "set_robust_list",
        "set_thread_area", "set_tid_address", "setfsgid", "setfsuid", "setgid", "setgroups", "setitimer", "setpgid",
        "setpriority", "setregid", "setresgid", "setresuid", "setreuid", "setrlimit", "setsid", "setsockopt", "setuid",
        "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
        "splice", "stat", "statfs", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
        "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
        "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill", "truncate", "umask",
        "uname", "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid",
        "write", "writev", "sethostname", "setdomainname",
    ];

    /// <summary>Values of personality(2) that are harmless (the ones Docker allows).</summary>
    public static readonly IReadOnlyList<ulong> AllowedPersonalities = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];
}
