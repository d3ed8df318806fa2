/* Tries, from inside a sandbox, what the sandbox must not be able to do, and prints one line per attempt:
 * "<what> ok" or "<what> <errno name>". Built static by the tests (Probe.cs) so it runs in any image. */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
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
    case ECONNREFUSED: return "ECONNREFUSED";
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

/* A TCP listener on port 7777 and a unix listener at the abstract name "cordon-left-behind". */
static struct sockaddr_in tcp_address(void) {
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(7777), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    return in;
}

static struct sockaddr_un unix_address(socklen_t *length) {
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    static const char abstract[] = "cordon-left-behind";
    memcpy(un.sun_path + 1, abstract, sizeof abstract - 1);
    *length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + sizeof abstract - 1);
    return un;
}

/* Listeners that outlive every process: their descriptors, with one end of a socket pair, in flight in that same
 * pair, which nothing else refers to once the process exits (only the kernel's garbage collector ends them). */
static void leave_listeners(void) {
    int tcp = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in in = tcp_address();
    in.sin_addr.s_addr = htonl(INADDR_ANY);
    report("tcp-listen", bind(tcp, (struct sockaddr *)&in, sizeof in) == 0 ? listen(tcp, 8) : -1);
    int local = socket(AF_UNIX, SOCK_STREAM, 0);
    socklen_t length;
    struct sockaddr_un un = unix_address(&length);
    report("unix-listen", bind(local, (struct sockaddr *)&un, length) == 0 ? listen(local, 8) : -1);
    int pair[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    int fds[3] = { tcp, local, pair[0] };
    char control[CMSG_SPACE(sizeof fds)] = { 0 }, byte = 'x';
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
    report("in-flight", sendmsg(pair[1], &msg, 0)); /* lands in pair[0]'s queue: a cycle */
}

/* Connects to what leave_listeners left, from another sandbox. */
static void reach_listeners(void) {
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = tcp_address();
    report("tcp-connect", connect(tcp, (struct sockaddr *)&in, sizeof in));
    int local = socket(AF_UNIX, SOCK_STREAM, 0);
    socklen_t length;
    struct sockaddr_un un = unix_address(&length);
    report("unix-connect", connect(local, (struct sockaddr *)&un, length));
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
    } else if (argc > 1 && strcmp(argv[1], "leave-listeners") == 0) {
        leave_listeners();
    } else if (argc > 1 && strcmp(argv[1], "reach-listeners") == 0) {
        reach_listeners();
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
