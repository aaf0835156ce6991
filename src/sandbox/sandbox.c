/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <unistd.h>
#include <grp.h>
#include <limits.h>

#include "sandbox/protocol.h"
#include "sandbox/sandbox.h"
#include "shared/list.h"
#include "shared/log.h"
#include "shared/util.h"

/* Moving a new init into its cgroup (and writing its id maps) off the event loop: a migration
 * into a cgroup waits for an RCU grace period (5-15 ms here, per hierarchy on cgroup v1), which
 * on the loop would stall every answer while the pool builds. One worker thread does them in
 * order; the init waits on its sync pipe until its turn. */
typedef struct AttachJob {
        Sandbox *sb;                    /* the worker reads its pid, slot and cgroup: they stay */
        pid_t pid;
        uint32_t map_base;
        Cgroup *cgroup;
        int sync_w;
        int result;
        bool done;                      /* under the lock */
        struct AttachJob *next;
} AttachJob;

typedef struct WriteWait {
        SandboxWriteFn cb;
        void *userdata;
        struct WriteWait *next;
} WriteWait;

#define SANDBOX_WRITES_MAX 16

struct SandboxEngine {
        sd_event *event;
        pthread_t attach_thread;
        bool attach_started, attach_stop;
        pthread_mutex_t attach_lock;
        pthread_cond_t attach_cond;     /* jobs queued, or stop */
        pthread_cond_t attach_done;     /* a job finished */
        AttachJob *attach_todo;
        int attach_efd;
        sd_event_source *attach_source;
        CgroupManager *cgroups;
        int init_fd;            /* O_PATH of the isol8-sandbox-init program */
        int seccomp_fd;         /* sealed memfd with the seccomp program */
        int devnull_fd;
        char **init_argv;       /* its arguments but --share-network */
        char *state_dir;
        char *root_dir;
        char **bind_dirs;
        uint32_t uid_base;
        uint8_t slots[SANDBOX_SLOTS_MAX];
        unsigned n_live;
        uint64_t next_id;
        Sandbox *live;          /* every sandbox not yet freed */
};

struct Sandbox {
        SandboxEngine *engine;
        char id[48];
        unsigned slot;
        pid_t pid;
        int sock;
        sd_event_source *io_source;
        sd_event_source *child_source;
        Cgroup *cgroup;
        SandboxHandler handler;
        void *userdata;
        bool ready;
        bool dead;
        bool share_network;
        unsigned runs;
        int proxy_fd;           /* from the last STARTED, until taken */
        int root_fd;            /* the init's root (O_PATH), opened at the first need */
        AttachJob *attach;      /* until the worker has put the init in its cgroup */
        WriteWait *writes;      /* sandbox_write()s under way, answered in order */
        unsigned n_writes;
        Sandbox *prev, *next;
};

static void attach_wait(Sandbox *sb);
static int on_attach_done(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* The init program: next to our own executable (a build tree), else where it is installed. */
static int open_init_program(const char *configured) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (configured)
                return RET_NERRNO(open(configured, O_PATH | O_CLOEXEC));
        r = own_program_path("isol8-sandbox-init", &path);
        if (r < 0)
                return r;
        return RET_NERRNO(open(path, O_PATH | O_CLOEXEC));
}

static int make_seccomp_memfd(void) {
        _cleanup_close_ int fd = -EBADF;
        SeccompProgram prog = {};
        int r;

        r = seccomp_program_build(&prog);
        if (r < 0)
                return r;
        fd = memfd_create("isol8-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                r = -errno;
        else
                r = loop_write(fd, prog.prog.filter, prog.prog.len * sizeof(struct sock_filter));
        seccomp_program_done(&prog);
        if (r < 0)
                return r;
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int sandbox_engine_new(SandboxEngine **ret, sd_event *event, const SandboxEngineConfig *config) {
        _cleanup_(sandbox_engine_freep) SandboxEngine *e = NULL;
        _cleanup_free_ char *self_cgroup = NULL;
        int r;

        e = calloc(1, sizeof(SandboxEngine));
        if (!e)
                return -ENOMEM;
        e->init_fd = e->seccomp_fd = e->devnull_fd = e->attach_efd = -EBADF;
        e->event = sd_event_ref(event);
        pthread_mutex_init(&e->attach_lock, NULL);
        pthread_cond_init(&e->attach_cond, NULL);
        pthread_cond_init(&e->attach_done, NULL);
        e->attach_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (e->attach_efd < 0)
                return -errno;
        r = sd_event_add_io(event, &e->attach_source, e->attach_efd, EPOLLIN, on_attach_done, e);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(e->attach_source, "sandbox-attach");
        e->uid_base = config->uid_base;
        e->state_dir = strdup(config->state_dir);
        if (!e->state_dir || asprintf(&e->root_dir, "%s/root", config->state_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(e->root_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "sandbox: cannot create %s: %m", e->root_dir);

        e->init_fd = open_init_program(config->init_program);
        if (e->init_fd < 0)
                return log_error_errno(e->init_fd, "sandbox: cannot find isol8-sandbox-init (%s): %m",
                                       config->init_program ?: ISOL8_LIBEXECDIR "/isol8-sandbox-init");
        e->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (e->devnull_fd < 0)
                return log_error_errno(errno, "sandbox: cannot open /dev/null: %m");

        for (int i = 0; i < _RUNTIME_MAX; i++) {
                bool dup = false;
                if (!config->runtimes->extra_dir[i])
                        continue;
                for (char **d = e->bind_dirs; d && *d; d++)
                        dup = dup || streq(*d, config->runtimes->extra_dir[i]);
                if (!dup && strv_push(&e->bind_dirs, strdup(config->runtimes->extra_dir[i])) < 0)
                        return -ENOMEM;
        }

        e->seccomp_fd = make_seccomp_memfd();
        if (e->seccomp_fd < 0)
                return log_error_errno(e->seccomp_fd, "sandbox: cannot build the seccomp filter: %m");

        r = read_full_file("/proc/self/cgroup", &self_cgroup, 65536, NULL);
        if (r < 0)
                return r;
        {
                _cleanup_free_ char *locks = NULL;
                if (asprintf(&locks, "%s/cgroup-locks", config->state_dir) < 0)
                        return -ENOMEM;
                r = cgroup_manager_new(&e->cgroups, config->cgroup_root, 0, self_cgroup, getpid(), locks);
        }
        if (r < 0)
                return r;
        r = cgroup_manager_reclaim(e->cgroups);
        if (r > 0)
                log_info("sandbox: reclaimed what %d earlier daemon(s) left behind", r);

        *ret = TAKE_PTR(e);
        return 0;
}

/* Ends a sandbox's processes and removes its cgroup; the object stays valid (and dead). */
static void sandbox_teardown(Sandbox *sb) {
        attach_wait(sb);
        sb->io_source = sd_event_source_disable_unref(sb->io_source);
        sb->child_source = sd_event_source_disable_unref(sb->child_source);
        if (sb->pid > 0) {
                /* Killing init ends the whole pid namespace. */
                (void) kill(sb->pid, SIGKILL);
                (void) waitpid(sb->pid, NULL, 0);
                sb->pid = 0;
        }
        sb->sock = safe_close(sb->sock);
        sb->cgroup = cgroup_destroy(sb->cgroup);
        sb->dead = true;
        sb->ready = false;
}

SandboxEngine *sandbox_engine_free(SandboxEngine *e) {
        if (!e)
                return NULL;
        /* Whatever is still alive (a run that did not finish before exit) must not outlive us:
         * no process, no zombie, no cgroup left. */
        for (Sandbox *sb = e->live; sb; sb = sb->next) {
                log_warning("sandbox %s: still in use at exit; killing it", sb->id);
                sandbox_teardown(sb);
        }
        if (e->attach_started) {
                pthread_mutex_lock(&e->attach_lock);
                e->attach_stop = true;
                pthread_cond_broadcast(&e->attach_cond);
                pthread_mutex_unlock(&e->attach_lock);
                pthread_join(e->attach_thread, NULL);
        }
        sd_event_source_disable_unref(e->attach_source);
        safe_close(e->attach_efd);
        pthread_cond_destroy(&e->attach_cond);
        pthread_cond_destroy(&e->attach_done);
        pthread_mutex_destroy(&e->attach_lock);
        cgroup_manager_free(e->cgroups);
        safe_close(e->init_fd);
        safe_close(e->seccomp_fd);
        safe_close(e->devnull_fd);
        strv_free(e->bind_dirs);
        free(e->root_dir);
        free(e->state_dir);
        sd_event_unref(e->event);
        free(e);
        return NULL;
}

unsigned sandbox_engine_n_live(SandboxEngine *e) {
        return e->n_live;
}

sd_event *sandbox_engine_event(SandboxEngine *e) {
        return e->event;
}

CgroupManager *sandbox_engine_cgroups(SandboxEngine *e) {
        return e->cgroups;
}

static void sandbox_emit(Sandbox *sb, SandboxEvent ev, int value) {
        if (sb->handler)
                sb->handler(sb, ev, value, sb->userdata);
}

/* Writes under way never get their answers now. */
static void fail_write(Sandbox *sb) {
        while (sb->writes) {
                WriteWait *w = sb->writes;
                sb->writes = w->next;
                sb->n_writes--;
                w->cb(-ESRCH, w->userdata);
                free(w);
        }
}

static void sandbox_mark_dead(Sandbox *sb) {
        if (sb->dead)
                return;
        sb->dead = true;
        sb->ready = false;
        sd_event_source_disable_unref(sb->io_source);
        sb->io_source = NULL;
        fail_write(sb);
        sandbox_emit(sb, SANDBOX_DIED, 0);
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Sandbox *sb = userdata;
        sb->child_source = sd_event_source_disable_unref(sb->child_source);
        sb->pid = 0;
        log_debug("sandbox %s: init exited (code %d, status %d)", sb->id, si->si_code, si->si_status);
        sandbox_mark_dead(sb);
        return 0;
}

/* A descriptor the init sent must be what it says: a listening IPv4 TCP socket. */
static bool is_listening_tcp(int fd) {
        int v = 0, domain = 0, type = 0;
        socklen_t l = sizeof(v);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) < 0 || !v)
                return false;
        l = sizeof(domain);
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0 || domain != AF_INET)
                return false;
        l = sizeof(type);
        return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) >= 0 && type == SOCK_STREAM;
}

static int on_message(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Sandbox *sb = userdata;
        InitMessage m;
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        _cleanup_close_ int passed = -EBADF;
        ssize_t n;

        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n >= 0)
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
                                memcpy(&passed, CMSG_DATA(c), sizeof(int));
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                sandbox_mark_dead(sb);
                return 0;
        }
        if (n == 0) {
                sandbox_mark_dead(sb);
                return 0;
        }
        if (n != sizeof(m))
                return 0;
        m.text[sizeof(m.text) - 1] = 0;
        switch (m.type) {
        case INIT_MSG_READY:
                if (m.value < 0) {
                        log_error("sandbox %s: setup failed: %s", sb->id, m.text);
                        sandbox_emit(sb, SANDBOX_READY, m.value);
                        return 0;
                }
                sb->ready = true;
                sandbox_emit(sb, SANDBOX_READY, m.value);
                break;
        case INIT_MSG_STARTED:
                if (m.value < 0 && m.a == INIT_STARTED_FILES_FAILED) {
                        sandbox_emit(sb, SANDBOX_WRITE_FAILED, m.value);
                        break;
                }
                if (m.value < 0)
                        log_warning("sandbox %s: run refused: %s", sb->id, m.text);
                sb->proxy_fd = safe_close(sb->proxy_fd);
                if (passed >= 0 && m.value > 0 && is_listening_tcp(passed))
                        sb->proxy_fd = TAKE_FD(passed);
                sandbox_emit(sb, SANDBOX_STARTED, m.value);
                break;
        case INIT_MSG_EXITED:
                sandbox_emit(sb, SANDBOX_EXITED, m.value);
                break;
        case INIT_MSG_WRITTEN:
                if (sb->writes) {
                        WriteWait *w = sb->writes;
                        sb->writes = w->next;
                        sb->n_writes--;
                        w->cb(m.value, w->userdata);
                        free(w);
                }
                break;
        case INIT_MSG_CLEANED:
                sb->ready = m.value >= 0;
                sandbox_emit(sb, SANDBOX_CLEANED, m.value);
                break;
        default:
                break;
        }
        return 0;
}

static int write_map(pid_t pid, const char *file, uint32_t base) {
        char path[64], map[64];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        snprintf(map, sizeof(map), "0 %u %u\n", base, SANDBOX_UID_RANGE);
        return write_string_file(path, map);
}

static void *attach_worker(void *userdata) {
        SandboxEngine *e = userdata;
        char c = 1;

        pthread_mutex_lock(&e->attach_lock);
        for (;;) {
                AttachJob *j;
                uint64_t one = 1;
                int r;

                while (!e->attach_todo && !e->attach_stop)
                        pthread_cond_wait(&e->attach_cond, &e->attach_lock);
                if (!e->attach_todo)
                        break;
                j = e->attach_todo;
                e->attach_todo = j->next;
                pthread_mutex_unlock(&e->attach_lock);

                r = write_map(j->pid, "uid_map", j->map_base);
                if (r >= 0)
                        r = write_map(j->pid, "gid_map", j->map_base);

                if (r >= 0)
                        r = cgroup_attach(j->cgroup, j->pid);
                /* The init goes on with its set-up; without the byte it gives up. */
                if (r >= 0 && write(j->sync_w, &c, 1) != 1)
                        r = -errno;
                j->sync_w = safe_close(j->sync_w);

                pthread_mutex_lock(&e->attach_lock);
                j->result = r;
                j->done = true;
                pthread_cond_broadcast(&e->attach_done);
                (void) !write(e->attach_efd, &one, sizeof(one));
        }
        pthread_mutex_unlock(&e->attach_lock);
        return NULL;
}

/* From the loop: the sandboxes whose init is in its cgroup now, or failed to get there. */
static int on_attach_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SandboxEngine *e = userdata;
        uint64_t v;

        (void) !read(e->attach_efd, &v, sizeof(v));
        for (Sandbox *sb = e->live, *next; sb; sb = next) {
                AttachJob *j = sb->attach;
                bool done;
                int r;

                next = sb->next;
                if (!j)
                        continue;
                pthread_mutex_lock(&e->attach_lock);
                done = j->done;
                pthread_mutex_unlock(&e->attach_lock);
                if (!done)
                        continue;
                r = j->result;
                sb->attach = NULL;
                free(j);
                if (r < 0) {
                        log_error_errno(r, "sandbox %s: cannot set the id maps and the cgroup of its init: %m", sb->id);
                        sandbox_emit(sb, SANDBOX_READY, r);   /* may free sb: next was taken */
                }
        }
        return 0;
}

static int attach_start(SandboxEngine *e, Sandbox *sb, pid_t pid, int sync_w) {
        AttachJob *j = calloc(1, sizeof(AttachJob));
        int r;

        if (!j)
                return -ENOMEM;
        if (!e->attach_started) {
                sigset_t all, old;
                sigfillset(&all);
                pthread_sigmask(SIG_SETMASK, &all, &old);
                r = pthread_create(&e->attach_thread, NULL, attach_worker, e);
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                if (r != 0) {
                        free(j);
                        return -r;
                }
                e->attach_started = true;
        }
        *j = (AttachJob) { .sb = sb, .pid = pid, .map_base = e->uid_base + sb->slot * SANDBOX_UID_RANGE,
                           .cgroup = sb->cgroup, .sync_w = sync_w };
        pthread_mutex_lock(&e->attach_lock);
        /* In order: the queue is short (the pool builds a few at once). */
        AttachJob **p = &e->attach_todo;
        while (*p)
                p = &(*p)->next;
        *p = j;
        pthread_cond_signal(&e->attach_cond);
        pthread_mutex_unlock(&e->attach_lock);
        sb->attach = j;
        return 0;
}

/* Before a sandbox's init is killed and its cgroup removed: its job must be over. */
static void attach_wait(Sandbox *sb) {
        SandboxEngine *e = sb->engine;
        AttachJob *j = sb->attach;

        if (!j)
                return;
        pthread_mutex_lock(&e->attach_lock);
        while (!j->done)
                pthread_cond_wait(&e->attach_done, &e->attach_lock);
        pthread_mutex_unlock(&e->attach_lock);
        sb->attach = NULL;
        free(j);
}

typedef struct SpawnArgs {
        int fds[INIT_FD_IMAGE + 1];     /* become 0..INIT_FD_IMAGE in the child */
        int exec_fd;
        char **argv;
        int error;                      /* written by the child if it could not exec */
} SpawnArgs;

static uint8_t spawn_stack[32 * 1024] __attribute__((aligned(16)));

/* The cloned child. It shares our memory and we are suspended until it execs (as posix_spawn
 * does), so no copy of the daemon's memory or descriptors ever lives beside the running daemon:
 * a database socket the daemon closes is really closed. It puts init's descriptors in place,
 * closes every other one, keeps its capabilities in the new user namespace across the exec as
 * ambient ones (its uid there is not mapped yet, so the exec would drop them otherwise), and
 * execs isol8-sandbox-init with an empty environment. Raw system calls only. */
static int spawn_child(void *userdata) {
        static char *const empty_env[] = { NULL };
        enum { N = INIT_FD_IMAGE + 1 };
        SpawnArgs *a = userdata;
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {};
        int fds[N], xfd;
        long r;

        /* Copy each fd above the range it goes to first, so that no target is overwritten early. */
        for (int i = 0; i < N; i++) {
                if ((r = syscall(SYS_fcntl, a->fds[i], F_DUPFD, N + 1)) < 0)
                        goto fail;
                fds[i] = (int) r;
        }
        if ((r = syscall(SYS_fcntl, a->exec_fd, F_DUPFD_CLOEXEC, N + 1)) < 0)
                goto fail;
        xfd = (int) r;
        for (int i = 0; i < N; i++)
                if ((r = syscall(SYS_dup3, fds[i], i, 0)) < 0)
                        goto fail;
        if ((r = syscall(SYS_dup3, xfd, N, O_CLOEXEC)) < 0 || (r = syscall(SYS_close_range, N + 1, ~0U, 0)) < 0)
                goto fail;
        xfd = N;

        if ((r = syscall(SYS_capget, &h, d)) < 0)
                goto fail;
        d[0].inheritable = d[0].permitted;
        d[1].inheritable = d[1].permitted;
        if ((r = syscall(SYS_capset, &h, d)) < 0)
                goto fail;
        for (unsigned long cap = 0; cap <= 63; cap++)
                if (d[cap / 32].permitted & (1u << (cap % 32)))
                        (void) syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
        r = syscall(SYS_execveat, xfd, "", a->argv, empty_env, AT_EMPTY_PATH);
fail:
        a->error = (int) (r < 0 ? r : -EIO);
        syscall(SYS_exit, 127);
        return 127;
}

/* A detached copy of the layer's directory (no path to it inside the sandbox, whose init could
 * not even walk to it: the state directory is the daemon's alone), read-only, nosuid, nodev. */
static int image_layer_open(const char *dir) {
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
        int fd = (int) syscall(SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static int build_init_argv(SandboxEngine *e, const SandboxOptions *opts, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL;
        char n[32];

        if (strv_push(&argv, strdup("isol8-sandbox-init")) < 0 || strv_push(&argv, strdup("--root")) < 0 ||
            strv_push(&argv, strdup(e->root_dir)) < 0)
                return -ENOMEM;
        snprintf(n, sizeof(n), "%" PRIu64, opts->sandbox_bytes);
        if (strv_push(&argv, strdup("--sandbox-bytes")) < 0 || strv_push(&argv, strdup(n)) < 0)
                return -ENOMEM;
        snprintf(n, sizeof(n), "%" PRIu64, opts->tmp_bytes);
        if (strv_push(&argv, strdup("--tmp-bytes")) < 0 || strv_push(&argv, strdup(n)) < 0)
                return -ENOMEM;
        if (opts->share_network && strv_push(&argv, strdup("--share-network")) < 0)
                return -ENOMEM;
        if (opts->image_dir && (strv_push(&argv, strdup("--image")) < 0 || strv_push(&argv, strdup(opts->image_target)) < 0))
                return -ENOMEM;
        for (char **d = e->bind_dirs; d && *d; d++)
                if (strv_push(&argv, strdup("--bind")) < 0 || strv_push(&argv, strdup(*d)) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

int sandbox_new(SandboxEngine *e, const SandboxOptions *opts, SandboxHandler handler, void *userdata, Sandbox **ret) {
        _cleanup_(sandbox_freep) Sandbox *sb = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_close_ int sync_r = -EBADF, sync_w = -EBADF, image_fd = -EBADF;
        int sv[2], syncp[2];
        unsigned long flags;
        pid_t pid;
        int r;

        sb = calloc(1, sizeof(Sandbox));
        if (!sb)
                return -ENOMEM;
        sb->engine = e;
        sb->sock = -EBADF;
        sb->proxy_fd = -EBADF;
        sb->root_fd = -EBADF;
        sb->slot = UINT32_MAX;
        sb->handler = handler;
        sb->userdata = userdata;
        sb->share_network = opts->share_network;
        for (unsigned i = 0; i < SANDBOX_SLOTS_MAX; i++)
                if (!e->slots[i]) {
                        e->slots[i] = 1;
                        sb->slot = i;
                        break;
                }
        if (sb->slot == UINT32_MAX)
                return -EBUSY;
        e->n_live++;
        LIST_PREPEND(e->live, sb);
        snprintf(sb->id, sizeof(sb->id), "sb-%u-%" PRIu64, sb->slot, ++e->next_id);

        r = cgroup_create(e->cgroups, sb->id, &sb->cgroup);
        if (r < 0)
                return r;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        sb->sock = sv[0];
        if (pipe2(syncp, O_CLOEXEC) < 0) {
                safe_close(sv[1]);
                return -errno;
        }
        sync_r = syncp[0];
        sync_w = syncp[1];

        r = build_init_argv(e, opts, &argv);
        if (r >= 0 && opts->image_dir) {
                image_fd = image_layer_open(opts->image_dir);
                if (image_fd < 0)
                        r = log_error_errno(image_fd, "sandbox: cannot open the image layer %s: %m", opts->image_dir);
        }
        if (r < 0) {
                safe_close(sv[1]);
                return r;
        }
        flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
        if (!opts->share_network)
                flags |= CLONE_NEWNET;
        {
                SpawnArgs a = {
                        .fds = { e->devnull_fd, e->devnull_fd, e->devnull_fd, sv[1], e->seccomp_fd, sync_r,
                                 image_fd >= 0 ? image_fd : e->devnull_fd },
                        .exec_fd = e->init_fd,
                        .argv = argv,
                };
                pid = clone(spawn_child, spawn_stack + sizeof(spawn_stack), (int) (flags | CLONE_VM | CLONE_VFORK | SIGCHLD), &a);
                if (pid > 0 && a.error < 0) {
                        /* It could not exec and has exited: nothing but its zombie to collect. */
                        (void) waitpid(pid, NULL, 0);
                        pid = -1;
                        errno = -a.error;
                }
        }
        if (pid < 0) {
                r = -errno;
                safe_close(sv[1]);
                return log_error_errno(r, "sandbox: cannot start isol8-sandbox-init: %m");
        }
        safe_close(sv[1]);
        sync_r = safe_close(sync_r);
        sb->pid = pid;

        r = attach_start(e, sb, pid, sync_w);
        if (r < 0)
                return r;
        sync_w = -EBADF;        /* the job's now */

        r = sd_event_add_io(e->event, &sb->io_source, sb->sock, EPOLLIN, on_message, sb);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(sb->io_source, "sandbox-control");
        r = sd_event_add_child(e->event, &sb->child_source, pid, WEXITED, on_child, sb);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(sb->child_source, "sandbox-init-exit");
        *ret = TAKE_PTR(sb);
        return 0;
}

Sandbox *sandbox_free(Sandbox *sb) {
        if (!sb)
                return NULL;
        fail_write(sb);
        sandbox_teardown(sb);
        safe_close(sb->proxy_fd);
        safe_close(sb->root_fd);
        if (sb->slot != UINT32_MAX) {
                SandboxEngine *e = sb->engine;
                e->slots[sb->slot] = 0;
                e->n_live--;
                LIST_REMOVE(e->live, sb);
        }
        free(sb);
        return NULL;
}

void sandbox_set_handler(Sandbox *sb, SandboxHandler handler, void *userdata) {
        sb->handler = handler;
        sb->userdata = userdata;
}

const char *sandbox_id(Sandbox *sb) {
        return sb->id;
}

bool sandbox_is_ready(Sandbox *sb) {
        return sb->ready && !sb->dead;
}

bool sandbox_is_dead(Sandbox *sb) {
        return sb->dead;
}

bool sandbox_shares_network(Sandbox *sb) {
        return sb->share_network;
}

unsigned sandbox_runs(Sandbox *sb) {
        return sb->runs;
}

Cgroup *sandbox_cgroup(Sandbox *sb) {
        return sb->cgroup;
}

pid_t sandbox_init_pid(Sandbox *sb) {
        return sb->pid;
}

uid_t sandbox_host_uid(Sandbox *sb) {
        return sb->engine->uid_base + sb->slot * SANDBOX_UID_RANGE + SANDBOX_UID;
}

/* m, then extra_size bytes of extra (a run's spec inline), with up to 4 fds. */
static int send_message_with(Sandbox *sb, const InitMessage *m, const void *extra, size_t extra_size, const int *fds,
                             size_t n_fds) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control = {};
        struct iovec iov[2] = { { (void *) m, sizeof(*m) }, { (void *) extra, extra_size } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = extra_size > 0 ? 2 : 1 };

        if (sb->dead || sb->sock < 0)
                return -ESRCH;
        if (n_fds > 0) {
                struct cmsghdr *c;
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        if (sendmsg(sb->sock, &mh, MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
}

static int send_message(Sandbox *sb, const InitMessage *m, const int *fds, size_t n_fds) {
        return send_message_with(sb, m, NULL, 0, fds, n_fds);
}

static int append_writes(Buffer *b, const SandboxWrite *writes, size_t n) {
        int r = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const SandboxWrite *w = &writes[i];
                RunSpecWrite rw = { .dir = w->dir, .path_size = (uint32_t) strlen(w->path) + 1, .size = w->dir ? 0 : w->size };
                r = buffer_append(b, &rw, sizeof(rw));
                if (r >= 0)
                        r = buffer_append(b, w->path, rw.path_size);
                if (r >= 0 && rw.size > 0)
                        r = buffer_append(b, w->data, rw.size);
        }
        return r;
}

/* A sealed-enough memfd with the bytes of b (the init maps it). */
static int buffer_to_memfd(Buffer *b, const char *name) {
        _cleanup_close_ int fd = memfd_create(name, MFD_CLOEXEC);
        int r;

        if (fd < 0)
                return -errno;
        r = loop_write(fd, b->data, b->size);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

#define WRITER_SLACK (4u << 20)

bool sandbox_memory_fits(Sandbox *sb, uint64_t bytes) {
        uint64_t avail;
        if (!sb->cgroup)
                return true;
        avail = cgroup_memory_available(sb->cgroup);
        return avail == UINT64_MAX || (avail > WRITER_SLACK && bytes <= avail - WRITER_SLACK);
}

int sandbox_write(Sandbox *sb, const SandboxWrite *writes, size_t n, SandboxWriteFn cb, void *userdata) {
        _cleanup_close_ int memfd = -EBADF;
        InitMessage m = { .type = INIT_MSG_WRITE, .value = (int32_t) n };
        Buffer b = {};
        int r;

        WriteWait *w, **tail;

        if (sb->dead || !sb->ready || sb->pid <= 0)
                return -ESRCH;
        if (sb->n_writes >= SANDBOX_WRITES_MAX)
                return -EBUSY;
        if (n == 0 || n > INT32_MAX)
                return -EINVAL;
        w = calloc(1, sizeof(WriteWait));
        if (!w)
                return -ENOMEM;
        *w = (WriteWait) { cb, userdata, NULL };
        r = append_writes(&b, writes, n);
        if (r >= 0)
                r = memfd = buffer_to_memfd(&b, "isol8-write");
        buffer_done(&b);
        if (r >= 0)
                r = send_message(sb, &m, &memfd, 1);
        if (r < 0) {
                free(w);
                return r;
        }
        for (tail = &sb->writes; *tail; tail = &(*tail)->next)
                ;
        *tail = w;
        sb->n_writes++;
        return 0;
}

int sandbox_run(Sandbox *sb, const RunSpec *spec, int fd_in, int fd_out, int fd_err) {
        _cleanup_close_ int memfd = -EBADF;
        RunSpecHeader h = {
                .argc = (uint32_t) strv_length(spec->argv),
                .envc = (uint32_t) strv_length(spec->envp),
                .fsize_limit = spec->fsize_limit,
                .sandbox_bytes = spec->sandbox_bytes,
                .tmp_bytes = spec->tmp_bytes,
                .readonly_rootfs = spec->readonly_rootfs,
                .seccomp = spec->seccomp,
                .proxy_port = spec->proxy_port,
                .n_writes = (uint32_t) spec->n_writes,
        };
        InitMessage m = { .type = INIT_MSG_RUN };
        Buffer b = {};
        size_t n_fds = 0;
        int fds[4];
        int r;

        if (!sandbox_is_ready(sb))
                return -ESRCH;
        if (strlen(spec->cwd) >= sizeof(h.cwd))
                return -ENAMETOOLONG;
        strcpy(h.cwd, spec->cwd);
        r = buffer_append(&b, &h, sizeof(h));
        for (char **s = spec->argv; r >= 0 && *s; s++)
                r = buffer_append(&b, *s, strlen(*s) + 1);
        for (char **s = spec->envp; r >= 0 && s && *s; s++)
                r = buffer_append(&b, *s, strlen(*s) + 1);
        if (r >= 0)
                r = append_writes(&b, spec->writes, spec->n_writes);
        if (r < 0) {
                buffer_done(&b);
                return r;
        }
        if (b.size > RUN_SPEC_INLINE_MAX) {
                /* Large (files with it): in a memfd the init maps, ahead of the three. */
                memfd = r = buffer_to_memfd(&b, "isol8-run");
                if (r >= 0) {
                        fds[n_fds++] = memfd;
                        buffer_done(&b);
                }
        }
        fds[n_fds++] = fd_in;
        fds[n_fds++] = fd_out;
        fds[n_fds++] = fd_err;
        /* Small: the spec in the message itself. */
        if (r >= 0)
                r = send_message_with(sb, &m, b.data, b.size, fds, n_fds);
        buffer_done(&b);
        if (r < 0)
                return r;
        sb->runs++;
        return 0;
}

int sandbox_take_proxy_fd(Sandbox *sb) {
        return sb->proxy_fd >= 0 ? TAKE_FD(sb->proxy_fd) : -ENOENT;
}

int sandbox_kill(Sandbox *sb) {
        InitMessage m = { .type = INIT_MSG_KILL };
        int r = send_message(sb, &m, NULL, 0);
        /* Belt and braces: the cgroup holds every process of the sandbox, wherever it hides. */
        if (sb->cgroup)
                (void) cgroup_kill_all(sb->cgroup, sb->pid);
        return r;
}

int sandbox_signal(Sandbox *sb, int sig) {
        InitMessage m = { .type = INIT_MSG_SIGNAL, .value = sig };
        return send_message(sb, &m, NULL, 0);
}

int sandbox_clean(Sandbox *sb, uint64_t sandbox_bytes, uint64_t tmp_bytes) {
        InitMessage m = { .type = INIT_MSG_CLEAN, .a = sandbox_bytes, .b = tmp_bytes };
        sb->ready = false;
        return send_message(sb, &m, NULL, 0);
}

int sandbox_open_root(Sandbox *sb) {
        char path[64];
        int fd;
        if (sb->pid <= 0 || sb->dead)
                return -ESRCH;
        if (sb->root_fd >= 0)
                return RET_NERRNO(fcntl(sb->root_fd, F_DUPFD_CLOEXEC, 3));
        snprintf(path, sizeof(path), "/proc/%d/root", (int) sb->pid);
        fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        /* The init died under us (not yet reaped): the sandbox is gone, which is not a
         * missing file. */
        if (fd < 0)
                return errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
        /* A ready init's root never changes (what is mounted below it does, and a lookup from
         * this fd sees the mounts of the moment): kept, and each caller gets a copy, a dup()
         * instead of a walk through /proc for each run's program file. */
        if (sb->ready) {
                sb->root_fd = fd;
                return RET_NERRNO(fcntl(fd, F_DUPFD_CLOEXEC, 3));
        }
        return fd;
}

void sandbox_net_bytes(Sandbox *sb, uint64_t *in, uint64_t *out) {
        _cleanup_free_ char *s = NULL;
        char path[64];

        *in = *out = 0;
        if (sb->share_network || sb->pid <= 0)
                return;
        snprintf(path, sizeof(path), "/proc/%d/net/dev", (int) sb->pid);
        if (read_full_file(path, &s, 1 << 16, NULL) < 0)
                return;
        for (char *save = NULL, *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char name[32];
                unsigned long long rx, tx, d[7];
                if (sscanf(line, " %31[^:]: %llu %llu %llu %llu %llu %llu %llu %llu %llu", name, &rx,
                           &d[0], &d[1], &d[2], &d[3], &d[4], &d[5], &d[6], &tx) != 10)
                        continue;
                if (streq(name, "lo"))
                        continue;
                *in += rx;
                *out += tx;
        }
}
