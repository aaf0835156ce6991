/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/cgroup-backend.h"
#include "shared/log.h"
#include "shared/util.h"

/* cgroup v1: one hierarchy per controller (memory, pids, cpu, cpuacct, freezer). */

static const char *const v1_names[_V1_MAX] = { "memory", "pids", "cpu", "cpuacct", "freezer" };

/* The v1 mount of a controller: <root>/<controller>, or a co-mounted "<root>/cpu,cpuacct". */
static int v1_mount(const char *root, const char *self_cgroup, const char *controller, char **ret) {
        const char *line = self_cgroup;
        _cleanup_free_ char *p = NULL;

        if (asprintf(&p, "%s/%s", root, controller) < 0)
                return -ENOMEM;
        if (access(p, F_OK) >= 0) {
                *ret = TAKE_PTR(p);
                return 0;
        }
        while (line && *line) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                _cleanup_free_ char *l = strndup(line, len);
                char *c1 = l ? strchr(l, ':') : NULL, *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (c1 && c2) {
                        *c2 = 0;
                        if (strstr(c1 + 1, controller)) {
                                free(p);
                                if (asprintf(&p, "%s/%s", root, c1 + 1) < 0)
                                        return -ENOMEM;
                                if (access(p, F_OK) >= 0) {
                                        *ret = TAKE_PTR(p);
                                        return 0;
                                }
                        }
                }
                line = nl ? nl + 1 : NULL;
        }
        return -ENOENT;
}

static int v1_setup(CgroupManager *m, const char *root, const char *self_cgroup) {
        for (unsigned i = 0; i < _V1_MAX; i++) {
                _cleanup_free_ char *mnt = NULL, *own = NULL;
                int r;

                r = v1_mount(root, self_cgroup, v1_names[i], &mnt);
                if (r < 0)
                        return log_error_errno(r, "cgroup: the v1 %s controller is not mounted below %s: %m", v1_names[i], root);
                r = cgroup_self_path(self_cgroup, v1_names[i], &own);
                if (r < 0)
                        return log_error_errno(r, "cgroup: cannot find own %s cgroup: %m", v1_names[i]);
                if (asprintf(&m->top[i], "%s%s%sisol8", mnt, own, endswith(own, "/") ? "" : "/") < 0 ||
                    asprintf(&m->base[i], "%s/%s", m->top[i], m->name) < 0)
                        return -ENOMEM;
                r = cgroup_mkdir(m->top[i]);
                if (r >= 0)
                        r = cgroup_mkdir(m->base[i]);
                if (r < 0)
                        return log_error_errno(r, "cgroup: cannot create %s: %m", m->base[i]);
        }
        m->n = _V1_MAX;
        return 0;
}

static int v1_write_limits(Cgroup *cg, uint64_t memory, double cpu, uint64_t pids) {
        char buf[64];
        int r;

        snprintf(buf, sizeof(buf), "%" PRId64, memory > 0 ? (int64_t) memory : (int64_t) -1);
        /* The combined limit must never sit below the plain one: order the writes accordingly. */
        (void) cgroup_write_file(cg->path[V1_MEMORY], "memory.memsw.limit_in_bytes", "-1");
        r = cgroup_write_file(cg->path[V1_MEMORY], "memory.limit_in_bytes", buf);
        if (r < 0)
                return r;
        (void) cgroup_write_file(cg->path[V1_MEMORY], "memory.memsw.limit_in_bytes", buf);
        (void) cgroup_write_file(cg->path[V1_MEMORY], "memory.swappiness", "0");
        /* v1 keeps TCP buffers outside memory.limit_in_bytes (and tcp_mem is host-wide): bound
         * them by the same limit. (v2 charges socket memory to memory.current itself.) */
        if (cgroup_file_exists(cg->path[V1_MEMORY], "memory.kmem.tcp.limit_in_bytes")) {
                r = cgroup_write_file(cg->path[V1_MEMORY], "memory.kmem.tcp.limit_in_bytes", buf);
                if (r < 0)
                        return r;
        }
        if (pids > 0)
                snprintf(buf, sizeof(buf), "%" PRIu64, pids);
        r = cgroup_write_file(cg->path[V1_PIDS], "pids.max", pids > 0 ? buf : "max");
        if (r < 0)
                return r;
        (void) cgroup_write_file(cg->path[V1_CPU], "cpu.cfs_period_us", "100000");
        snprintf(buf, sizeof(buf), "%" PRId64, cpu > 0 ? (int64_t) (cpu * 100000) : (int64_t) -1);
        return cgroup_write_file(cg->path[V1_CPU], "cpu.cfs_quota_us", buf);
}

/* Counter files, kept open (cgroup-backend.h). */
enum { C_CPU, C_MEMORY, C_MEMORY_PEAK, C_OOM, C_PIDS_EVENTS, C_CPU_WEIGHT };

static void v1_read_stats(Cgroup *cg, CgroupStats *s) {
        uint64_t ns = 0;

        (void) cgroup_counter_u64(cg, C_CPU, cg->path[V1_CPUACCT], "cpuacct.usage", &ns);
        s->cpu_usec = ns / 1000;
        (void) cgroup_counter_u64(cg, C_MEMORY, cg->path[V1_MEMORY], "memory.usage_in_bytes", &s->memory_bytes);
        (void) cgroup_counter_u64(cg, C_MEMORY_PEAK, cg->path[V1_MEMORY], "memory.max_usage_in_bytes", &s->memory_peak_bytes);
        (void) cgroup_counter_keyed(cg, C_OOM, cg->path[V1_MEMORY], "memory.oom_control", "oom_kill", &s->oom_kills);
        (void) cgroup_counter_keyed(cg, C_PIDS_EVENTS, cg->path[V1_PIDS], "pids.events", "max", &s->pids_max_events);
}

static void v1_reset_counters(Cgroup *cg) {
        (void) cgroup_counter_write(cg, C_MEMORY_PEAK, cg->path[V1_MEMORY], "memory.max_usage_in_bytes", "0");
        (void) cgroup_counter_write(cg, C_CPU, cg->path[V1_CPUACCT], "cpuacct.usage", "0");
}

/* cpu.shares: 1024 is v2's weight 100. */
static int v1_write_cpu_weight(Cgroup *cg, unsigned weight) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%u", MAX(weight * 1024 / 100, 2u));
        return cgroup_counter_write(cg, C_CPU_WEIGHT, cg->path[V1_CPU], "cpu.shares", buf);
}

static void v1_freeze(char *const *path, bool freeze) {
        (void) cgroup_write_file(path[V1_FREEZER], "freezer.state", freeze ? "FROZEN" : "THAWED");
        /* Freezing is asynchronous; wait a bounded while for it to settle. */
        for (int i = 0; freeze && i < 200; i++) {
                _cleanup_free_ char *s = NULL;
                if (cgroup_read_file(path[V1_FREEZER], "freezer.state", &s) < 0 || startswith(s, "FROZEN"))
                        return;
                nanosleep(&(struct timespec) { 0, 100000 }, NULL);
        }
}

const CgroupBackend cgroup_backend_v1 = {
        .version = CGROUP_V1,
        .setup = v1_setup,
        .write_limits = v1_write_limits,
        .read_stats = v1_read_stats,
        .reset_counters = v1_reset_counters,
        .write_cpu_weight = v1_write_cpu_weight,
        .freeze = v1_freeze,
};
