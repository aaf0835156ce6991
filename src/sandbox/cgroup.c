/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/cgroup-backend.h"
#include "shared/log.h"
#include "shared/util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

int cgroup_write_file(const char *dir, const char *file, const char *value) {
        _cleanup_free_ char *p = NULL;
        _cleanup_close_ int fd = -EBADF;

        if (asprintf(&p, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        return loop_write(fd, value, strlen(value));
}

bool cgroup_file_exists(const char *dir, const char *file) {
        _cleanup_free_ char *p = NULL;
        return asprintf(&p, "%s/%s", dir, file) >= 0 && access(p, F_OK) >= 0;
}

int cgroup_read_file(const char *dir, const char *file, char **ret) {
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        return read_full_file(p, ret, 1 << 20, NULL);
}

/* Counters are read after every run: one open, one read, no allocation. */
static int read_small(const char *dir, const char *file, char *buf, size_t size) {
        char p[PATH_MAX];
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        if ((size_t) snprintf(p, sizeof(p), "%s/%s", dir, file) >= sizeof(p))
                return -ENAMETOOLONG;
        fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        return 0;
}

int cgroup_read_u64(const char *dir, const char *file, uint64_t *ret) {
        char s[64];
        int r = read_small(dir, file, s, sizeof(s));
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = 0;
        return safe_atou64(s, ret);
}

/* "key value" lines, as in memory.events, cpu.stat, memory.oom_control, pids.events. */
static int keyed_value(const char *s, const char *key, uint64_t *ret) {
        size_t kl = strlen(key);
        for (const char *line = s; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (strncmp(line, key, kl) == 0 && line[kl] == ' ')
                        return safe_atou64_prefix(line + kl + 1, ret);
        }
        return -ENOENT;
}

int cgroup_read_keyed(const char *dir, const char *file, const char *key, uint64_t *ret) {
        char s[4096];
        int r = read_small(dir, file, s, sizeof(s));
        if (r < 0)
                return r;
        return keyed_value(s, key, ret);
}

static int counter_fd(Cgroup *cg, unsigned slot, const char *dir, const char *file) {
        char p[PATH_MAX];
        int fd;

        assert(slot < CGROUP_COUNTERS_MAX);
        if (cg->counter_fd[slot] >= 0)
                return cg->counter_fd[slot];
        if ((size_t) snprintf(p, sizeof(p), "%s/%s", dir, file) >= sizeof(p))
                return -ENAMETOOLONG;
        fd = open(p, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);   /* a counter with nothing to reset */
        if (fd < 0)
                return -errno;
        return cg->counter_fd[slot] = fd;
}

static int counter_read(Cgroup *cg, unsigned slot, const char *dir, const char *file, char *buf, size_t size) {
        int fd = counter_fd(cg, slot, dir, file);
        ssize_t n;

        if (fd < 0)
                return fd;
        n = pread(fd, buf, size - 1, 0);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        return 0;
}

int cgroup_counter_u64(Cgroup *cg, unsigned slot, const char *dir, const char *file, uint64_t *ret) {
        char s[64];
        int r = counter_read(cg, slot, dir, file, s, sizeof(s));
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = 0;
        return safe_atou64(s, ret);
}

int cgroup_counter_keyed(Cgroup *cg, unsigned slot, const char *dir, const char *file, const char *key, uint64_t *ret) {
        char s[4096];
        int r = counter_read(cg, slot, dir, file, s, sizeof(s));
        if (r < 0)
                return r;
        return keyed_value(s, key, ret);
}

int cgroup_counter_write(Cgroup *cg, unsigned slot, const char *dir, const char *file, const char *value) {
        int fd = counter_fd(cg, slot, dir, file);
        if (fd < 0)
                return fd;
        return pwrite(fd, value, strlen(value), 0) < 0 ? -errno : 0;
}

int cgroup_self_path(const char *self_cgroup, const char *controller, char **ret) {
        const char *line = self_cgroup;

        while (line && *line) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                _cleanup_free_ char *l = strndup(line, len);
                char *c1, *c2;

                if (!l)
                        return -ENOMEM;
                c1 = strchr(l, ':');
                c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (c1 && c2) {
                        *c1 = 0;
                        *c2 = 0;
                        const char *ctrls = c1 + 1;
                        bool match;
                        if (isempty(controller))
                                match = streq(l, "0") && isempty(ctrls);
                        else {
                                match = false;
                                _cleanup_free_ char *copy = strdup(ctrls);
                                char *save = NULL;
                                if (!copy)
                                        return -ENOMEM;
                                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                                        if (streq(t, controller))
                                                match = true;
                        }
                        if (match) {
                                *ret = strdup(c2 + 1);
                                return *ret ? 0 : -ENOMEM;
                        }
                }
                line = nl ? nl + 1 : NULL;
        }
        return -ENOENT;
}


static int rmdir_tree(const char *dir);

int cgroup_mkdir(const char *p) {
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}




/* Locks <lock_dir>/<name>.lock: held while we live, it is what says that a directory is a live
 * daemon's (pids say nothing across pid namespaces). 1: ours now; 0: held by another; < 0 error. */
static int lock_name(const char *lock_dir, const char *name, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;

        if (asprintf(&path, "%s/%s.lock", lock_dir, name) < 0)
                return -ENOMEM;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? 0 : -errno;
        *ret_fd = TAKE_FD(fd);
        return 1;
}

static int take_name(CgroupManager *m, const char *lock_dir) {
        snprintf(m->name, sizeof(m->name), "d%d", (int) m->self_pid);
        if (!lock_dir)
                return 0;
        m->lock_dir = strdup(lock_dir);
        if (!m->lock_dir)
                return -ENOMEM;
        (void) mkdir(lock_dir, 0700);
        for (unsigned n = 1; n < 100; n++) {
                int r = lock_name(lock_dir, m->name, &m->lock_fd);
                if (r < 0)
                        return log_error_errno(r, "cgroup: cannot lock %s/%s.lock: %m", lock_dir, m->name);
                if (r > 0)
                        return 0;
                /* A live daemon in another pid namespace has our pid: take another name. */
                snprintf(m->name, sizeof(m->name), "d%d.%u", (int) m->self_pid, n);
        }
        return -EBUSY;
}

int cgroup_manager_new(CgroupManager **ret, const char *root, CgroupVersion version,
                       const char *self_cgroup, pid_t self_pid, const char *lock_dir) {
        _cleanup_(cgroup_manager_freep) CgroupManager *m = NULL;
        int r;

        if (version == 0) {
                struct statfs sfs;
                _cleanup_free_ char *mem = NULL;
                if (statfs(root, &sfs) < 0)
                        return -errno;
                if ((uint64_t) sfs.f_type == CGROUP2_SUPER_MAGIC)
                        version = CGROUP_V2;
                else if (asprintf(&mem, "%s/memory", root) >= 0 && access(mem, F_OK) >= 0)
                        version = CGROUP_V1;
                else
                        return log_error_errno(EOPNOTSUPP, "cgroup: neither a unified hierarchy nor a v1 memory controller at %s", root);
        }
        m = calloc(1, sizeof(CgroupManager));
        if (!m)
                return -ENOMEM;
        m->backend = version == CGROUP_V2 ? &cgroup_backend_v2 : &cgroup_backend_v1;
        m->self_pid = self_pid;
        m->lock_fd = -EBADF;
        r = take_name(m, lock_dir);
        if (r < 0)
                return r;
        r = m->backend->setup(m, root, self_cgroup);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

CgroupManager *cgroup_manager_free(CgroupManager *m) {
        if (!m)
                return NULL;
        for (unsigned i = 0; i < CGROUP_DIRS_MAX; i++) {
                if (m->base[i])
                        (void) rmdir_tree(m->base[i]);
                free(m->base[i]);
                free(m->top[i]);
        }
        if (m->lock_fd >= 0) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s.lock", m->lock_dir, m->name) >= 0)
                        (void) unlink(path);
                safe_close(m->lock_fd);
        }
        free(m->lock_dir);
        free(m);
        return NULL;
}

CgroupVersion cgroup_manager_version(CgroupManager *m) {
        return m->backend->version;
}

const char *cgroup_manager_base(CgroupManager *m) {
        return m->base[0];
}

static int kill_procs_in(const char *dir, pid_t except) {
        _cleanup_free_ char *s = NULL;
        int n = 0;

        if (cgroup_read_file(dir, "cgroup.procs", &s) < 0)
                return 0;
        for (char *save = NULL, *t = strtok_r(s, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
                uint64_t pid;
                if (safe_atou64(t, &pid) < 0 || pid == 0 || (pid_t) pid == except)
                        continue;
                if (kill((pid_t) pid, SIGKILL) >= 0)
                        n++;
        }
        return n;
}


static int kill_all_at(CgroupManager *m, char *const *path, pid_t except) {
        int n = 0;

        m->backend->freeze(path, true);
        for (int round = 0; round < 8; round++) {
                int k = 0;
                for (unsigned i = 0; i < m->n; i++)
                        k += kill_procs_in(path[i], except);
                n += k;
                if (k == 0)
                        break;
        }
        m->backend->freeze(path, false);
        return n;
}

static int rmdir_tree(const char *dir) {
        _cleanup_(closedirp_helper) DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                _cleanup_free_ char *sub = NULL;
                if (de->d_type != DT_DIR || streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0)
                        return -ENOMEM;
                (void) rmdir_tree(sub);
        }
        if (rmdir(dir) < 0 && errno != ENOENT) {
                /* A fake tree in tests holds regular files: remove them too. */
                if (errno == ENOTEMPTY) {
                        rewinddir(d);
                        while ((de = readdir(d)))
                                if (de->d_type == DT_REG)
                                        (void) unlinkat(dirfd(d), de->d_name, 0);
                        if (rmdir(dir) >= 0)
                                return 0;
                }
                return -errno;
        }
        return 0;
}

static void kill_tree(CgroupManager *m, const char *rel) {
        char *paths[CGROUP_DIRS_MAX] = {};
        for (unsigned i = 0; i < m->n; i++)
                if (asprintf(&paths[i], "%s/%s", m->top[i], rel) < 0)
                        paths[i] = NULL;
        /* Kill in every sandbox directory of the dead daemon, then remove them. */
        for (unsigned i = 0; i < m->n; i++) {
                _cleanup_(closedirp_helper) DIR *d = paths[i] ? opendir(paths[i]) : NULL;
                struct dirent *de;
                if (!d)
                        continue;
                while ((de = readdir(d))) {
                        _cleanup_free_ char *sub = NULL;
                        if (de->d_type != DT_DIR || de->d_name[0] == '.')
                                continue;
                        if (asprintf(&sub, "%s/%s", paths[i], de->d_name) < 0)
                                continue;
                        if (i == 0) {
                                char *sp[CGROUP_DIRS_MAX] = {};
                                for (unsigned j = 0; j < m->n; j++)
                                        if (asprintf(&sp[j], "%s/%s/%s", m->top[j], rel, de->d_name) < 0)
                                                sp[j] = NULL;
                                bool ok = true;
                                for (unsigned j = 0; j < m->n; j++)
                                        ok = ok && sp[j];
                                if (ok)
                                        (void) kill_all_at(m, sp, 0);
                                for (unsigned j = 0; j < m->n; j++)
                                        free(sp[j]);
                        }
                }
        }
        for (unsigned i = 0; i < m->n; i++) {
                if (paths[i]) {
                        /* Give the kernel a moment to empty the groups of the killed processes. */
                        for (int tries = 0; tries < 100 && rmdir_tree(paths[i]) == -EBUSY; tries++) {
                                struct timespec ts = { 0, 1000000 };
                                nanosleep(&ts, NULL);
                        }
                }
                free(paths[i]);
        }
}

int cgroup_manager_reclaim(CgroupManager *m) {
        _cleanup_(closedirp_helper) DIR *d = opendir(m->top[0]);
        struct dirent *de;
        int n = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                if (de->d_type != DT_DIR || de->d_name[0] != 'd' || streq(de->d_name, m->name))
                        continue;
                if (m->lock_dir) {
                        /* Its daemon holds its lock while it lives (in whatever pid namespace). */
                        _cleanup_close_ int fd = -EBADF;
                        _cleanup_free_ char *path = NULL;
                        int r = lock_name(m->lock_dir, de->d_name, &fd);
                        if (r == 0)
                                continue;
                        if (r > 0 && asprintf(&path, "%s/%s.lock", m->lock_dir, de->d_name) >= 0)
                                (void) unlink(path);
                } else {
                        /* No lock directory: a live isol8 daemon with that pid owns it. */
                        uint64_t pid;
                        char comm_path[64];
                        _cleanup_free_ char *comm = NULL;
                        if (safe_atou64(de->d_name + 1, &pid) < 0)
                                continue;
                        snprintf(comm_path, sizeof(comm_path), "/proc/%" PRIu64 "/comm", pid);
                        if (read_one_line_file_at(AT_FDCWD, comm_path, &comm) >= 0 && streq(comm, "isol8"))
                                continue;
                }
                log_info("cgroup: reclaiming sandboxes left by %s", de->d_name);
                kill_tree(m, de->d_name);
                n++;
        }
        return n;
}

int cgroup_create(CgroupManager *m, const char *name, Cgroup **ret) {
        _cleanup_(cgroup_destroyp) Cgroup *cg = NULL;

        cg = calloc(1, sizeof(Cgroup));
        if (!cg)
                return -ENOMEM;
        cg->manager = m;
        for (unsigned i = 0; i < CGROUP_COUNTERS_MAX; i++)
                cg->counter_fd[i] = -EBADF;
        for (unsigned i = 0; i < m->n; i++) {
                int r;
                if (asprintf(&cg->path[i], "%s/%s", m->base[i], name) < 0)
                        return -ENOMEM;
                r = cgroup_mkdir(cg->path[i]);
                if (r < 0)
                        return log_error_errno(r, "cgroup: cannot create %s: %m", cg->path[i]);
        }
        *ret = TAKE_PTR(cg);
        return 0;
}

Cgroup *cgroup_destroy(Cgroup *cg) {
        if (!cg)
                return NULL;
        for (unsigned i = 0; i < CGROUP_COUNTERS_MAX; i++)
                safe_close(cg->counter_fd[i]);
        if (cg->path[0])
                (void) kill_all_at(cg->manager, cg->path, 0);
        for (unsigned i = 0; i < cg->manager->n; i++) {
                if (!cg->path[i])
                        continue;
                for (int tries = 0; tries < 200; tries++) {
                        int r = rmdir_tree(cg->path[i]);
                        if (r != -EBUSY)
                                break;
                        struct timespec ts = { 0, 500000 };
                        nanosleep(&ts, NULL);
                }
                free(cg->path[i]);
        }
        free(cg);
        return NULL;
}

int cgroup_attach(Cgroup *cg, pid_t pid) {
        char s[32];
        snprintf(s, sizeof(s), "%d", (int) pid);
        for (unsigned i = 0; i < cg->manager->n; i++) {
                int r = cgroup_write_file(cg->path[i], "cgroup.procs", s);
                if (r < 0)
                        return log_error_errno(r, "cgroup: cannot attach %d to %s: %m", (int) pid, cg->path[i]);
        }
        return 0;
}

int cgroup_set_limits(Cgroup *cg, uint64_t memory, double cpu, uint64_t pids) {
        int r;

        /* Most runs use the same limits as the one before: spare the writes then. */
        if (cg->limits_set && cg->memory == memory && cg->cpu == cpu && cg->pids == pids)
                return 0;
        cg->limits_set = false;
        r = cg->manager->backend->write_limits(cg, memory, cpu, pids);
        if (r < 0)
                return r;
        cg->limits_set = true;
        cg->memory = memory;
        cg->cpu = cpu;
        cg->pids = pids;
        return 0;
}



int cgroup_read_stats(Cgroup *cg, CgroupStats *ret) {
        CgroupStats s = {};

        cg->manager->backend->read_stats(cg, &s);
        cg->last_oom_kills = s.oom_kills;
        cg->last_pids_max_events = s.pids_max_events;
        *ret = s;
        return 0;
}

uint64_t cgroup_memory_available(Cgroup *cg) {
        CgroupStats s = {};

        if (!cg->limits_set || cg->memory == 0)
                return UINT64_MAX;
        cg->manager->backend->read_stats(cg, &s);
        return s.memory_bytes >= cg->memory ? 0 : cg->memory - s.memory_bytes;
}

void cgroup_set_cpu_weight(Cgroup *cg, unsigned weight) {
        weight = MIN(MAX(weight, 1u), 10000u);
        if (cg->cpu_weight == weight || cg->no_cpu_weight)
                return;
        cg->cpu_weight = weight;
        if (cg->manager->backend->write_cpu_weight(cg, weight) == -ENOENT)
                cg->no_cpu_weight = true;
}

void cgroup_reset_counters(Cgroup *cg) {
        cg->manager->backend->reset_counters(cg);
}

void cgroup_event_baseline(Cgroup *cg, uint64_t *ret_oom_kills, uint64_t *ret_pids_max_events) {
        *ret_oom_kills = cg->last_oom_kills;
        *ret_pids_max_events = cg->last_pids_max_events;
}


int cgroup_kill_all(Cgroup *cg, pid_t except) {
        return kill_all_at(cg->manager, cg->path, except);
}

int cgroup_count_procs(Cgroup *cg) {
        _cleanup_free_ char *s = NULL;
        int n = 0;
        if (cgroup_read_file(cg->path[0], "cgroup.procs", &s) < 0)
                return 0;
        for (char *p = s; *p; p++)
                if (*p == '\n')
                        n++;
        return n;
}
