/* SPDX-License-Identifier: MIT */
/* The init process of a sandbox (the isol8-sandbox-init program): runs as root of its own user
 * namespace and PID 1 of its own pid namespace. It builds the sandbox's file system once, then
 * serves run requests. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/fsio.h"
#include "sandbox/protocol.h"
#include "sandbox/sandbox.h"
#include "sandbox/tmpfs-state.h"
#include "shared/util.h"

static int init_sock = -1;

/* CPU time this init has used (µs): what building it cost, and with a difference what a clean
 * costs, so that the pool can choose the cheaper (the daemon's side of either is small). */
static int32_t cpu_usec(void) {
        struct rusage ru;
        uint64_t us;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        us = (uint64_t) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + (uint64_t) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
        return (int32_t) MIN(us, (uint64_t) INT32_MAX);
}

static void send_msg(uint32_t type, int32_t value, const char *fmt, ...) _printf_(3, 4);
static void send_msg(uint32_t type, int32_t value, const char *fmt, ...) {
        InitMessage m = { .type = type, .value = value };
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(m.text, sizeof(m.text), fmt, ap);
                va_end(ap);
        }
        while (send(init_sock, &m, sizeof(m), MSG_NOSIGNAL) < 0 && errno == EINTR)
                ;
}

/* STARTED with the proxy's listening socket: the daemon accepts on it, in this namespace. */
static void send_started_with_fd(int32_t pid, int fd) {
        InitMessage m = { .type = INIT_MSG_STARTED, .value = pid };
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        while (sendmsg(init_sock, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
                ;
}

/* The filtered network's door: 127.0.0.1:port in this sandbox's own network namespace, made
 * before the program starts so that nothing of the program's can hold the port. */
static int proxy_listen(uint16_t port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int one = 1, fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(fd, 128) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

_Noreturn static void fail(int error, const char *what) {
        send_msg(INIT_MSG_READY, error < 0 ? error : -error, "%s: %s", what, strerror(error < 0 ? -error : error));
        _exit(1);
}

static unsigned long mount_flags_of(const char *path) {
        struct statvfs sv;
        unsigned long f = 0;
        if (statvfs(path, &sv) < 0)
                return 0;
        /* Keep the flags the kernel locks for a mount inherited into a user namespace. */
        if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
        if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
        return f;
}

/* Read-only, nosuid, nodev bind of a host path at the same place below the new root. */
static int bind_ro(const char *src, const char *dst, bool dir) {
        if (dir) {
                if (mkdir_p(dst, 0755) < 0)
                        return -errno;
        } else {
                int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0)
                        return -errno;
                close(fd);
        }
        if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                return -errno;
        if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | mount_flags_of(src), NULL) < 0)
                return -errno;
        return 0;
}

static int mount_tmpfs(const char *where, unsigned long flags, const char *base_opts, uint64_t size) {
        char opts[128];
        snprintf(opts, sizeof(opts), "%s,size=%llu", base_opts, (unsigned long long) size);
        return RET_NERRNO(mount("tmpfs", where, "tmpfs", flags, opts));
}

/* The writable mounts a run can leave something in: each a tmpfs of its own. */
enum { VOL_SANDBOX, VOL_TMP, VOL_SHM, _VOL_MAX };
static const struct {
        const char *path;
        unsigned long flags;
        const char *opts;
} vol[_VOL_MAX] = {
        [VOL_SANDBOX] = { "/sandbox", MS_NOSUID | MS_NODEV, "mode=0755,uid=1000,gid=1000" },
        [VOL_TMP] = { "/tmp", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777" },
        [VOL_SHM] = { "/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777" },
};
#define SHM_BYTES (UINT64_C(64) << 20)

/* relative: below the new root's directory while setup_root() builds it, else absolute. */
static int mount_vol(size_t i, uint64_t size, bool relative) {
        return mount_tmpfs(vol[i].path + relative, vol[i].flags, vol[i].opts, size);
}

static int write_text(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int r;
        if (fd < 0)
                return -errno;
        r = loop_write(fd, text, strlen(text));
        close(fd);
        return r;
}

static int setup_dev(void) {
        static const char *const nodes[] = { "null", "zero", "full", "random", "urandom" };
        int r;

        if (mkdir("dev", 0755) < 0)
                return -errno;
        r = RET_NERRNO(mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536"));
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                char src[64], dst[64];
                int fd;
                snprintf(src, sizeof(src), "/dev/%s", nodes[i]);
                snprintf(dst, sizeof(dst), "dev/%s", nodes[i]);
                fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
                if (fd < 0)
                        return -errno;
                close(fd);
                if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                        return -errno;
                if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC | mount_flags_of(src), NULL) < 0)
                        return -errno;
        }
        if (symlink("/proc/self/fd", "dev/fd") < 0 || symlink("/proc/self/fd/0", "dev/stdin") < 0 ||
            symlink("/proc/self/fd/1", "dev/stdout") < 0 || symlink("/proc/self/fd/2", "dev/stderr") < 0)
                return -errno;
        if (mkdir("dev/shm", 01777) < 0)
                return -errno;
        r = mount_vol(VOL_SHM, SHM_BYTES, true);
        if (r < 0)
                return r;
        return RET_NERRNO(mount(NULL, "dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536"));
}

static int setup_etc(void) {
        static const char *const host_files[] = { "/etc/ld.so.cache", "/etc/localtime", "/etc/mime.types" };
        static const char *const host_dirs[] = { "/etc/ssl", "/etc/ca-certificates", "/etc/alternatives" };
        int r;

        if (mkdir("etc", 0755) < 0)
                return -errno;
        if ((r = write_text("etc/passwd", "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                          "sandbox:x:1000:1000:sandbox:/sandbox:/bin/bash\n"
                                          "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")) < 0 ||
            (r = write_text("etc/group", "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n")) < 0 ||
            (r = write_text("etc/hosts", "127.0.0.1 localhost sandbox\n::1 localhost ip6-localhost\n")) < 0 ||
            (r = write_text("etc/hostname", "sandbox\n")) < 0 ||
            (r = write_text("etc/resolv.conf", "")) < 0 ||
            (r = write_text("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n")) < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(host_files); i++)
                if (access(host_files[i], F_OK) >= 0 && (r = bind_ro(host_files[i], host_files[i] + 1, false)) < 0)
                        return r;
        for (size_t i = 0; i < ELEMENTSOF(host_dirs); i++)
                if (access(host_dirs[i], F_OK) >= 0 && (r = bind_ro(host_dirs[i], host_dirs[i] + 1, true)) < 0)
                        return r;
        return 0;
}

static int loopback_up(void) {
        struct ifreq ifr = {};
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int r = 0;

        if (fd < 0)
                return -errno;
        strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                r = -errno;
        else {
                ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
                if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                        r = -errno;
        }
        close(fd);
        return r;
}

/* Whether any packet went over loopback since the namespace was made. */
static bool loopback_used(void) {
        char buf[4096];
        ssize_t n;
        int fd = open("/proc/self/net/dev", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return true;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return true;
        buf[n] = 0;
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                unsigned long long rx_bytes, rx_packets;
                char *colon = strchr(line, ':');
                if (!colon)
                        continue;
                if (sscanf(colon + 1, "%llu %llu", &rx_bytes, &rx_packets) == 2 && (rx_bytes || rx_packets))
                        return true;
        }
        return false;
}

static void setup_root(const InitParams *p) {
        static const char *const links[][2] = {
                { "usr/bin", "bin" }, { "usr/sbin", "sbin" }, { "usr/lib", "lib" },
                { "usr/lib64", "lib64" }, { "usr/lib32", "lib32" },
        };
        int r;

        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                fail(errno, "make mounts private");
        if (mount("tmpfs", p->root_dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1048576") < 0)
                fail(errno, "mount root tmpfs");
        if (chdir(p->root_dir) < 0)
                fail(errno, "enter root");
        if ((r = bind_ro("/usr", "usr", true)) < 0)
                fail(r, "bind /usr");
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                char host[64];
                snprintf(host, sizeof(host), "/%s", links[i][1]);
                if (access(host, F_OK) >= 0 && symlink(links[i][0], links[i][1]) < 0)
                        fail(errno, "symlink");
        }
        for (const char *const *d = p->bind_dirs; d && *d; d++)
                if ((r = bind_ro(*d, *d + 1, true)) < 0)
                        fail(r, "bind runtime directory");
        if ((r = setup_etc()) < 0)
                fail(r, "populate /etc");
        if (mkdir("proc", 0555) < 0)
                fail(errno, "mkdir /proc");
        /* Before pivot_root: once the old root is detached the kernel refuses a new proc. */
        /* hidepid=invisible: the program (uid 1000) cannot even see init (uid 0) or its
         * command line, environment and memory. */
        if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") < 0)
                fail(errno, "mount /proc");
        if ((r = setup_dev()) < 0)
                fail(r, "populate /dev");
        if (mkdir("sandbox", 0755) < 0 || mkdir("tmp", 01777) < 0 || mkdir("root", 0700) < 0)
                fail(errno, "mkdir");
        if (mount_vol(VOL_SANDBOX, p->sandbox_bytes, true) < 0)
                fail(errno, "mount /sandbox");
        if (mount_vol(VOL_TMP, p->tmp_bytes, true) < 0)
                fail(errno, "mount /tmp");
        if (p->image_target) {
                /* The daemon made it read-only, nosuid and nodev before handing it over. */
                if (mkdir_p(p->image_target + 1, 0755) < 0)
                        fail(errno, "mkdir the image's place");
                if (syscall(SYS_move_mount, INIT_FD_IMAGE, "", AT_FDCWD, p->image_target + 1, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        fail(errno, "mount the image");
        }
        close(INIT_FD_IMAGE);

        if (syscall(SYS_pivot_root, ".", ".") < 0)
                fail(errno, "pivot_root");
        if (umount2(".", MNT_DETACH) < 0)
                fail(errno, "detach old root");
        if (chdir("/") < 0)
                fail(errno, "chdir /");
        if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
                fail(errno, "make root read-only");
}

static int set_root_readonly(bool ro) {
        return RET_NERRNO(mount(NULL, "/", NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV | (ro ? MS_RDONLY : 0), NULL));
}

static pid_t main_pid = 0;
/* The program's stdout and stderr, kept open here until it is reaped (see keep_output()). */
static int held_out[2] = { -1, -1 };
static bool root_ro = true;
static uint64_t cur_sandbox_bytes, cur_tmp_bytes;

/* Kills every process in the namespace but init, and reaps them. */
static void kill_all(void) {
        for (;;) {
                int status;
                pid_t p;
                if (kill(-1, SIGKILL) < 0 && errno == ESRCH)
                        break;
                p = waitpid(-1, &status, 0);
                if (p < 0 && errno == ECHILD)
                        break;
                if (p == main_pid) {
                        /* reported by the caller */
                }
        }
}

static int resize(size_t i, uint64_t size) {
        char opts[64];
        snprintf(opts, sizeof(opts), "size=%llu", (unsigned long long) size);
        return RET_NERRNO(mount(NULL, vol[i].path, NULL, MS_REMOUNT | vol[i].flags, opts));
}

/* How each writable mount looked when it was new. */
static TmpfsState vol_state[_VOL_MAX];
static bool vol_reliable;

static void vol_take_states(void) {
        for (size_t i = 0; i < _VOL_MAX; i++)
                if (!vol_reliable || tmpfs_state_take(vol[i].path, &vol_state[i]) < 0)
                        vol_state[i].valid = false;
}

/* Each writable mount as the next user must find it: a fresh tmpfs of the right size. One no
 * run touched (tmpfs-state.h) is already that and stays; the others are replaced. */
static int reset_mounts(uint64_t sandbox_bytes, uint64_t tmp_bytes) {
        const uint64_t want[_VOL_MAX] = { sandbox_bytes, tmp_bytes, SHM_BYTES };
        uint64_t *cur[_VOL_MAX] = { &cur_sandbox_bytes, &cur_tmp_bytes, NULL };
        int r;

        for (size_t i = 0; i < _VOL_MAX; i++) {
                if (tmpfs_state_untouched(vol[i].path, &vol_state[i])) {
                        if (cur[i] && *cur[i] != want[i]) {
                                r = resize(i, want[i]);
                                if (r < 0)
                                        return r;
                                *cur[i] = want[i];
                        }
                        continue;
                }
                if (umount2(vol[i].path, MNT_DETACH) < 0)
                        return -errno;
                r = mount_vol(i, want[i], false);
                if (r < 0)
                        return r;
                if (cur[i])
                        *cur[i] = want[i];
                if (!vol_reliable || tmpfs_state_take(vol[i].path, &vol_state[i]) < 0)
                        vol_state[i].valid = false;
        }
        return 0;
}

_Noreturn static void child_exec(const RunSpecHeader *h, char **argv, char **envp, const int fds[3], const SeccompProgram *seccomp) {
        struct rlimit rl;
        sigset_t all;

        if (setsid() < 0)
                goto fail_errno;
        for (int i = 0; i < 3; i++)
                if (dup2(fds[i], i) < 0)
                        goto fail_errno;
        if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
                goto fail_errno;

        /* No core dumps. 1, not 0: a core_pattern that pipes to a helper (systemd-coredump,
         * apport) ignores a limit of 0 and starts that helper as root on the host, outside the
         * sandbox's cgroup, for every crash; 1 is the kernel's "abort the dump" value for pipes,
         * and too small for a core file. The filter keeps the program from lowering it to 0. */
        rl = (struct rlimit) { 1, 1 };
        (void) setrlimit(RLIMIT_CORE, &rl);
        rl = (struct rlimit) { h->fsize_limit, h->fsize_limit };
        (void) setrlimit(RLIMIT_FSIZE, &rl);
        rl = (struct rlimit) { 1024, 1024 };
        (void) setrlimit(RLIMIT_NOFILE, &rl);

        /* Dispositions are the default already (set once at the init's start); the mask is
         * the init's (SIGCHLD blocked for its signalfd): empty it. */
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);

        if (setgroups(0, NULL) < 0 || setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) < 0 ||
            setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) < 0)
                goto fail_errno;
        if (chdir(h->cwd) < 0) {
                dprintf(2, "isol8: cannot enter working directory %s: %s\n", h->cwd, strerror(errno));
                _exit(127);
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                goto fail_errno;
        if (h->seccomp && seccomp->prog.filter && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &seccomp->prog, 0, 0) < 0)
                goto fail_errno;
        execve(argv[0], argv, envp);
        dprintf(2, "isol8: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
fail_errno:
        dprintf(2, "isol8: sandbox setup failed: %s\n", strerror(errno));
        _exit(127);
}

typedef struct ChildArgs {
        const RunSpecHeader *h;
        char **argv;
        char **envp;
        const int *fds;
        const SeccompProgram *seccomp;
} ChildArgs;

static uint8_t child_stack[256 * 1024] __attribute__((aligned(16)));

static int child_trampoline(void *arg) {
        ChildArgs *a = arg;
        child_exec(a->h, a->argv, a->envp, a->fds, a->seccomp);
}

/* Writes the entries starting at off: 0 or -errno. Done by the init itself, with the sandbox
 * user's file system ids for every access (sandbox/fsio.c switches them, which also drops the
 * init's file capabilities for the duration) and fsio's rules: nothing followed out of /sandbox
 * and /tmp, no symlink or hard link written through. The init is in the sandbox's cgroup, so
 * the files count against its memory; the daemon refuses what would not fit first. */
static int write_entries(const char *blob, size_t size, size_t off, uint32_t n) {
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

        if (root < 0)
                return -EIO;
        for (uint32_t i = 0; i < n; i++) {
                RunSpecWrite w;
                const char *path;
                int r;

                if (size - off < sizeof(w))
                        return -EINVAL;
                memcpy(&w, blob + off, sizeof(w));
                off += sizeof(w);
                if (w.path_size == 0 || w.path_size > size - off || blob[off + w.path_size - 1] != 0 ||
                    w.size > size - off - w.path_size)
                        return -EINVAL;
                path = blob + off;
                off += w.path_size;
                r = w.dir ? sandbox_mkdir_p(root, path, SANDBOX_UID, SANDBOX_UID)
                          : sandbox_write_file(root, path, blob + off, (size_t) w.size, SANDBOX_UID, SANDBOX_UID, 0644);
                if (r < 0)
                        return r;
                off += (size_t) w.size;
        }
        return 0;
}

/* The same from a memfd of entries (POST /file into a session). */
static int write_entries_fd(int fd, uint32_t n) {
        struct stat st;
        char *blob;
        int r;

        if (fstat(fd, &st) < 0 || st.st_size <= 0)
                return -EINVAL;
        blob = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (blob == MAP_FAILED)
                return -EIO;
        r = write_entries(blob, (size_t) st.st_size, 0, n);
        (void) munmap(blob, (size_t) st.st_size);
        return r;
}

/* Starts the program of a run spec (size bytes at blob) with io as its stdin, stdout and
 * stderr, and answers STARTED. */
static void run_spec(char *blob, size_t size, const int io[3], const SeccompProgram *seccomp) {
        _cleanup_close_ int listen_fd = -EBADF;
        RunSpecHeader h;
        char **argv = NULL, **envp = NULL;
        size_t off;
        pid_t pid;
        int r = 0;

        if (main_pid > 0) {
                send_msg(INIT_MSG_STARTED, -EBUSY, "a program is already running");
                goto out;
        }
        if (size < sizeof(h)) {
                send_msg(INIT_MSG_STARTED, -EINVAL, "bad run spec");
                goto out;
        }
        memcpy(&h, blob, sizeof(h));
        h.cwd[sizeof(h.cwd) - 1] = 0;
        argv = calloc(h.argc + 1, sizeof(char *));
        envp = calloc(h.envc + 1, sizeof(char *));
        if (!argv || !envp || h.argc == 0) {
                send_msg(INIT_MSG_STARTED, -EINVAL, "bad run spec");
                goto out;
        }
        off = sizeof(h);
        for (uint32_t i = 0; i < h.argc + h.envc; i++) {
                const char *end = off < size ? memchr(blob + off, 0, size - off) : NULL;
                if (!end) {
                        send_msg(INIT_MSG_STARTED, -EINVAL, "truncated run spec");
                        goto out;
                }
                if (i < h.argc)
                        argv[i] = blob + off;
                else
                        envp[i - h.argc] = blob + off;
                off = (size_t) (end - blob) + 1;
        }

        if (h.sandbox_bytes != cur_sandbox_bytes) {
                r = resize(VOL_SANDBOX, h.sandbox_bytes);
                if (r >= 0)
                        cur_sandbox_bytes = h.sandbox_bytes;
        }
        if (r >= 0 && h.tmp_bytes != cur_tmp_bytes) {
                r = resize(VOL_TMP, h.tmp_bytes);
                if (r >= 0)
                        cur_tmp_bytes = h.tmp_bytes;
        }
        if (r >= 0 && (bool) h.readonly_rootfs != root_ro) {
                r = set_root_readonly(h.readonly_rootfs);
                if (r >= 0)
                        root_ro = h.readonly_rootfs;
        }
        if (r < 0) {
                send_msg(INIT_MSG_STARTED, r, "cannot apply sandbox sizes: %s", strerror(-r));
                goto out;
        }
        /* After the sizes: a file that does not fit the run's sandboxSize is ENOSPC. */
        if (h.n_writes > 0) {
                r = write_entries(blob, size, off, h.n_writes);
                if (r < 0) {
                        InitMessage m = { .type = INIT_MSG_STARTED, .value = r, .a = INIT_STARTED_FILES_FAILED };
                        while (send(init_sock, &m, sizeof(m), MSG_NOSIGNAL) < 0 && errno == EINTR)
                                ;
                        goto out;
                }
        }
        if (h.proxy_port > 0) {
                listen_fd = proxy_listen(h.proxy_port > UINT16_MAX ? 0 : (uint16_t) h.proxy_port);
                if (listen_fd < 0) {
                        send_msg(INIT_MSG_STARTED, listen_fd, "cannot listen on 127.0.0.1:%u for the proxy: %s",
                                 h.proxy_port, strerror(-listen_fd));
                        goto out;
                }
        }

        {
                /* Like posix_spawn: the child borrows init's memory until it execs, so starting a
                 * program costs no copy of init's (the daemon's) page tables. It changes only its
                 * own credentials, fds, limits and signal state, which are not shared. */
                ChildArgs ca = { &h, argv, envp, io, seccomp };
                pid = clone(child_trampoline, child_stack + sizeof(child_stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &ca);
        }
        if (pid < 0) {
                send_msg(INIT_MSG_STARTED, -errno, "clone: %s", strerror(errno));
                goto out;
        }
        main_pid = pid;
        if (listen_fd >= 0)
                send_started_with_fd(pid, listen_fd);
        else
                send_msg(INIT_MSG_STARTED, pid, NULL);
out:
        free(argv);
        free(envp);
}

static void release_output(void) {
        for (int i = 0; i < 2; i++)
                held_out[i] = safe_close(held_out[i]);
}

/* While the program runs, the init keeps its stdout and stderr open (out[0], out[1]: taken):
 * its exit then wakes only the init, whose EXITED and the pipes' end reach the daemon together,
 * one wake-up instead of two. */
static void keep_output(int out[2]) {
        release_output();
        if (main_pid <= 0)
                return;
        for (int i = 0; i < 2; i++)
                held_out[i] = TAKE_FD(out[i]);
}

/* A run whose spec comes in a memfd (fds: the memfd, stdin, stdout, stderr). */
static void handle_run(int fds[4], const SeccompProgram *seccomp) {
        char *blob;
        struct stat st;

        if (fstat(fds[0], &st) < 0 || st.st_size <= 0 || st.st_size > (INT64_C(4) << 30))
                send_msg(INIT_MSG_STARTED, -EINVAL, "bad run spec");
        /* Mapped, not read: the files in it are not copied into (and charged to) the init. */
        else if ((blob = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fds[0], 0)) == MAP_FAILED)
                send_msg(INIT_MSG_STARTED, -errno, "cannot map run spec");
        else {
                run_spec(blob, (size_t) st.st_size, fds + 1, seccomp);
                /* The program has exec'd (vfork): nothing uses the mapping any more. */
                (void) munmap(blob, (size_t) st.st_size);
                keep_output(fds + 2);
        }
        for (int i = 0; i < 4; i++)
                safe_close(fds[i]);
}

static void reap(void) {
        for (;;) {
                int status;
                pid_t p = waitpid(-1, &status, WNOHANG);
                if (p <= 0)
                        return;
                if (p == main_pid) {
                        /* The run is over when its main process is: end whatever it left. */
                        main_pid = 0;
                        kill_all();
                        send_msg(INIT_MSG_EXITED, status, NULL);
                        release_output();
                }
        }
}

/* A run spec small enough comes in the RUN message itself, after its header (sandbox_run()). */
static char inline_spec[RUN_SPEC_INLINE_MAX];

/* 1 with a whole message (and *ret_extra bytes of it in inline_spec), 0 for nothing usable. */
static int receive(InitMessage *m, int fds[4], size_t *n_fds, size_t *ret_extra) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov[2] = { { m, sizeof(*m) }, { inline_spec, sizeof(inline_spec) } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = &control, .msg_controllen = sizeof(control) };
        ssize_t n;

        *n_fds = 0;
        *ret_extra = 0;
        n = recvmsg(init_sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 0 : -errno;
        if (n == 0)
                return -ECONNRESET;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        memcpy(fds, CMSG_DATA(c), MIN(k, (size_t) 4) * sizeof(int));
                        *n_fds = MIN(k, (size_t) 4);
                }
        if ((size_t) n < sizeof(*m) || (mh.msg_flags & MSG_TRUNC))
                return 0;
        *ret_extra = (size_t) n - sizeof(*m);
        return 1;
}

_Noreturn void sandbox_init_main(const InitParams *p) {
        sigset_t mask;
        struct pollfd pfd[2];
        int sfd, r;

        init_sock = p->sock;
        (void) prctl(PR_SET_NAME, "isol8-init");
        /* What init writes for the programs (/etc/passwd, ...) must be readable by them, whatever
         * umask the service runs with (UMask=0077 under its unit). */
        umask(022);

        /* Wait until the daemon has written our id maps and placed us in our cgroup, then become
         * root of the user namespace and drop the ambient capabilities we were started with
         * (see spawn_child() in sandbox.c): the programs must not inherit them. */
        {
                char c;
                if (read(p->sync_fd, &c, 1) != 1)
                        _exit(1);
                close(p->sync_fd);
        }
        if (setresgid(0, 0, 0) < 0 || setgroups(0, NULL) < 0 || setresuid(0, 0, 0) < 0)
                fail(errno, "become root of the user namespace");
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                fail(errno, "clear ambient capabilities");
        {
                struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
                struct __user_cap_data_struct d[2];
                if (syscall(SYS_capget, &h, d) < 0)
                        fail(errno, "capget");
                d[0].inheritable = d[1].inheritable = 0;
                if (syscall(SYS_capset, &h, d) < 0)
                        fail(errno, "clear inheritable capabilities");
        }
        /* After the credential change, which clears it: if the daemon dies, so does the sandbox. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                fail(errno, "PR_SET_PDEATHSIG");
        /* The cgroup namespace is made after the move, so its root is the sandbox's cgroup. */
        if (unshare(CLONE_NEWCGROUP) < 0)
                fail(errno, "unshare cgroup namespace");
        if (sethostname("sandbox", 7) < 0)
                fail(errno, "sethostname");
        if (!p->share_network && (r = loopback_up()) < 0)
                fail(r, "bring up loopback");
        setup_root(p);
        cur_sandbox_bytes = p->sandbox_bytes;
        cur_tmp_bytes = p->tmp_bytes;
        {
                struct utsname u;
                vol_reliable = uname(&u) >= 0 && tmpfs_state_reliable(u.release);
        }
        vol_take_states();

        /* Only the control socket stays open (the program's fds come with each run). */
        r = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (r < 0)
                fail(errno, "open /dev/null");
        for (int i = 0; i < 3; i++)
                dup2(r, i);
        if (fcntl(init_sock, F_SETFD, FD_CLOEXEC) < 0)
                fail(errno, "fcntl");
        if (syscall(SYS_close_range, init_sock + 1, ~0U, 0) < 0)
                fail(errno, "close_range");

        /* Every signal's disposition back to the default, once: an ignored one (the daemon
         * ignores SIGPIPE) would survive each run's execve. The init itself handles signals
         * only through its signalfd, so runs need not reset 64 of them each. */
        for (int s = 1; s < _NSIG; s++)
                (void) signal(s, SIG_DFL);
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0)
                fail(errno, "signalfd");

        send_msg(INIT_MSG_READY, MAX(cpu_usec(), 1), NULL);

        pfd[0] = (struct pollfd) { .fd = init_sock, .events = POLLIN };
        pfd[1] = (struct pollfd) { .fd = sfd, .events = POLLIN };
        for (;;) {
                InitMessage m;
                int fds[4] = { -1, -1, -1, -1 };
                size_t n_fds, extra;

                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                if (pfd[1].revents) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof(si)) > 0)
                                ;
                        reap();
                }
                if (!pfd[0].revents)
                        continue;
                if (pfd[0].revents & (POLLHUP | POLLERR) && !(pfd[0].revents & POLLIN))
                        _exit(0);
                r = receive(&m, fds, &n_fds, &extra);
                if (r < 0)
                        _exit(0);
                if (r == 0) {
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        continue;
                }
                switch (m.type) {
                case INIT_MSG_RUN:
                        if (extra > 0 && n_fds == 3) {
                                /* The spec inline: fds are stdin, stdout, stderr. */
                                run_spec(inline_spec, extra, fds, p->seccomp);
                                /* The program has exec'd (vfork): its environment (secrets, as
                                 * a memfd's unmapped one) does not stay in the init. */
                                explicit_bzero(inline_spec, extra);
                                keep_output(fds + 1);
                                for (size_t i = 0; i < n_fds; i++)
                                        safe_close(fds[i]);
                                break;
                        }
                        if (extra > 0 || n_fds != 4) {
                                for (size_t i = 0; i < n_fds; i++)
                                        safe_close(fds[i]);
                                send_msg(INIT_MSG_STARTED, -EINVAL, "run request without its fds");
                                break;
                        }
                        handle_run(fds, p->seccomp);
                        break;
                case INIT_MSG_WRITE: {
                        /* Files into a session's sandbox (POST /file). */
                        int k = n_fds == 1 && m.value > 0 ? write_entries_fd(fds[0], (uint32_t) m.value) : -EINVAL;
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        send_msg(INIT_MSG_WRITTEN, k, NULL);
                        break;
                }
                case INIT_MSG_KILL:
                        if (kill(-1, SIGKILL) < 0 && errno != ESRCH)
                                break;
                        break;
                case INIT_MSG_SIGNAL:
                        if (main_pid > 0 && m.value > 0 && m.value < _NSIG)
                                (void) kill(main_pid, m.value);
                        break;
                case INIT_MSG_CLEAN: {
                        int32_t cpu_before = cpu_usec();
                        kill_all();
                        main_pid = 0;
                        release_output();
                        /* Fresh SysV IPC for the next user of this sandbox (the old namespace goes
                         * with the last process in it), done here, off the path of a run. */
                        r = RET_NERRNO(unshare(CLONE_NEWIPC));
                        /* A fresh network namespace too when the run used it (its counters
                         * moved): no byte counters, sockets or routes of the previous user. It
                         * costs a few ms of CPU, so a run that never touched the network skips
                         * it. And the pid counter starts over. */
                        if (r >= 0 && !p->share_network && loopback_used()) {
                                r = RET_NERRNO(unshare(CLONE_NEWNET));
                                if (r >= 0)
                                        r = loopback_up();
                        }
                        if (r >= 0)
                                r = write_text("/proc/sys/kernel/ns_last_pid", "1");
                        if (r >= 0)
                                r = reset_mounts(m.a, m.b);
                        if (r >= 0 && !root_ro && set_root_readonly(true) >= 0)
                                root_ro = true;
                        send_msg(INIT_MSG_CLEANED, r < 0 ? r : MAX(cpu_usec() - cpu_before, 1), NULL);
                        break;
                }
                default:
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        break;
                }
        }
}
