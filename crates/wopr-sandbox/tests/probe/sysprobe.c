/* The sandbox tests' probe: a static program that issues raw system calls and prints what came back,
 * so a test can tell "refused by the sandbox" from "refused by the kernel" (every sub-command picks
 * arguments that an unfiltered kernel would accept, or answer with another error).
 *
 * Compiled with `gcc -static` by tests/common/probe.rs. Output: `ok=<value>` or `errno=<n>`, one line;
 * a process killed by the seccomp filter prints nothing and dies of SIGSYS.
 *
 *   socket FAMILY [TYPE [PROTOCOL]]   socket(2) (TYPE defaults to SOCK_STREAM)
 *   raw NR [ARG...]                   syscall(NR, ARG...) with up to six integer arguments
 *   x32                               getpid through the x32 ABI (number | 0x40000000)
 *   int80                             getpid through the i386 ABI (int $0x80)
 *   clone FLAGS                       clone(FLAGS | SIGCHLD); the child exits at once
 *   clone3                            clone3 with only SIGCHLD as exit signal
 *   traceme                           ptrace(PTRACE_TRACEME)
 *   vmread                            process_vm_readv of our own memory
 *   open PATH r|w|rw                  open(2)
 *   hold COUNT MIB LIMIT_MIB          COUNT children one after the other, each touching MIB MiB and
 *                                     keeping it; stops early once the living holders exceed LIMIT_MIB;
 *                                     prints `held=<most holders alive at once> launched=<n>`
 *   tree MARKER                       forks a child that forks a grandchild running `sleep MARKER`,
 *                                     prints `started`, then waits forever
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(long r) {
    if (r < 0) {
        printf("errno=%d\n", errno);
        return 1;
    }
    printf("ok=%ld\n", r);
    return 0;
}

static long num(const char *s) { return strtol(s, NULL, 0); }

static int hold(int count, long mib, long limit_mib) {
    pid_t pids[count];
    int alive_fd[count];
    int most = 0, launched = 0;
    for (int i = 0; i < count; i++) {
        int p[2];
        if (pipe(p) < 0) return report(-1);
        pid_t pid = fork();
        if (pid < 0) break;
        if (pid == 0) {
            close(p[0]);
            size_t len = (size_t)mib << 20;
            /* volatile: the stores must happen, so every page is really resident */
            volatile char *m = malloc(len);
            if (!m) _exit(1);
            for (size_t at = 0; at < len; at += 4096) m[at] = 1;
            if (write(p[1], "h", 1) != 1) _exit(1);
            for (;;) pause();
        }
        close(p[1]);
        launched++;
        pids[i] = pid;
        char c;
        /* One byte: it holds its memory now. End of file: it died (killed) before. */
        alive_fd[i] = read(p[0], &c, 1) == 1 ? p[0] : -1;
        if (alive_fd[i] < 0) close(p[0]);
        /* A holder the kernel killed to make room may not have been reaped yet: while more than one
         * seems alive, look again for up to a second before counting (a broken bound stays broken). */
        int alive = 0;
        for (int settle = 0; settle < 20; settle++) {
            alive = 0;
            for (int j = 0; j <= i; j++) {
                if (alive_fd[j] < 0) continue;
                int status;
                if (waitpid(pids[j], &status, WNOHANG) == 0) {
                    alive++;
                } else {
                    close(alive_fd[j]);
                    alive_fd[j] = -1;
                }
            }
            if (alive <= 1) break;
            usleep(50 * 1000);
        }
        if (alive > most) most = alive;
        if ((long)alive * mib > limit_mib) break; /* the bound is broken: stop before the host suffers */
    }
    for (int j = 0; j < launched; j++) kill(pids[j], SIGKILL);
    while (wait(NULL) > 0) {
    }
    printf("held=%d launched=%d\n", most, launched);
    return 0;
}

static int tree(const char *marker) {
    pid_t child = fork();
    if (child == 0) {
        pid_t grandchild = fork();
        if (grandchild == 0) {
            execl("/bin/sleep", "sleep", marker, (char *)NULL);
            _exit(127);
        }
        for (;;) pause();
    }
    printf("started\n");
    fflush(stdout);
    for (;;) pause();
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: sysprobe COMMAND [ARG...]\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "socket") && argc >= 3) {
        long type = argc >= 4 ? num(argv[3]) : SOCK_STREAM;
        long protocol = argc >= 5 ? num(argv[4]) : 0;
        return report(syscall(SYS_socket, num(argv[2]), type, protocol));
    }
    if (!strcmp(cmd, "raw") && argc >= 3) {
        long a[6] = {0};
        for (int i = 0; i < 6 && i + 3 < argc; i++) a[i] = num(argv[i + 3]);
        return report(syscall(num(argv[2]), a[0], a[1], a[2], a[3], a[4], a[5]));
    }
    if (!strcmp(cmd, "x32")) return report(syscall(0x40000000L | SYS_getpid));
    if (!strcmp(cmd, "int80")) {
        long r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory"); /* 20: getpid on i386 */
        if (r < 0 && r > -4096) {
            errno = (int)-r;
            r = -1;
        }
        return report(r);
    }
    if (!strcmp(cmd, "clone") && argc >= 3) {
        long r = syscall(SYS_clone, num(argv[2]) | SIGCHLD, 0, 0, 0, 0);
        if (r == 0) _exit(0);
        if (r > 0) waitpid((pid_t)r, NULL, 0);
        return report(r);
    }
    if (!strcmp(cmd, "clone3")) {
        unsigned long long args[11] = {0};
        args[4] = SIGCHLD; /* exit_signal */
        long r = syscall(SYS_clone3, args, sizeof(args));
        if (r == 0) _exit(0);
        if (r > 0) waitpid((pid_t)r, NULL, 0);
        return report(r);
    }
    if (!strcmp(cmd, "traceme")) return report(syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0));
    if (!strcmp(cmd, "vmread")) {
        char src[8] = "abcdefg", dst[8];
        struct iovec local = {dst, sizeof(dst)}, remote = {src, sizeof(src)};
        return report(syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0));
    }
    if (!strcmp(cmd, "open") && argc >= 4) {
        int flags = !strcmp(argv[3], "r") ? O_RDONLY : !strcmp(argv[3], "w") ? O_WRONLY : O_RDWR;
        return report(open(argv[2], flags | O_CLOEXEC));
    }
    if (!strcmp(cmd, "hold") && argc >= 5) return hold((int)num(argv[2]), num(argv[3]), num(argv[4]));
    if (!strcmp(cmd, "tree") && argc >= 3) return tree(argv[2]);
    fprintf(stderr, "sysprobe: unknown command %s\n", cmd);
    return 2;
}
