/* Tries, from inside a sandbox, what the sandbox must not be able to do, and prints one line per attempt:
 * "<what> ok" or "<what> <errno name>". Built static by the tests (Probe.cs) so it runs in any image. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *name(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case ESRCH: return "ESRCH";
    case EBADF: return "EBADF";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    default: return "other";
    }
}

static void report(const char *what, long rc) {
    if (rc >= 0) printf("%s ok\n", what);
    else printf("%s %s\n", what, name(errno));
}

static void family(const char *what, int domain, int type) {
    int fd = socket(domain, type, 0);
    report(what, fd);
    if (fd >= 0) close(fd);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "sockets") == 0) {
        family("unix", AF_UNIX, SOCK_STREAM);
        family("inet", AF_INET, SOCK_STREAM);
        family("inet6", AF_INET6, SOCK_STREAM);
        family("netlink", AF_NETLINK, SOCK_RAW);
        family("packet", 17 /* AF_PACKET */, SOCK_RAW);
        family("key", 15 /* AF_KEY */, SOCK_RAW);
        family("bluetooth", 31 /* AF_BLUETOOTH */, SOCK_STREAM);
        family("alg", 38 /* AF_ALG */, SOCK_SEQPACKET);
        family("vsock", 40 /* AF_VSOCK */, SOCK_STREAM);
        family("huge", 0x10001 /* an int past every family */, SOCK_STREAM);
        int pair[2];
        report("socketpair-unix", socketpair(AF_UNIX, SOCK_STREAM, 0, pair));
        report("socketpair-inet", socketpair(AF_INET, SOCK_STREAM, 0, pair));
    } else if (argc > 1 && strcmp(argv[1], "agent") == 0) {
        long pidfd = syscall(434 /* pidfd_open */, 1, 0);
        report("pidfd_open", pidfd);
        if (pidfd >= 0) report("pidfd_getfd", syscall(438 /* pidfd_getfd */, pidfd, 3, 0));
        else printf("pidfd_getfd skipped\n");
        report("environ", open("/proc/1/environ", O_RDONLY));
        report("mem", open("/proc/1/mem", O_RDONLY));
    }
    return 0;
}
