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

/* cgroup v2: the unified hierarchy, with a subtree delegated to the daemon (Delegate=yes). */

static int enable_controllers(const char *dir) {
        /* Not every host delegates every controller: enable what is there. */
        static const char *const ctrls[] = { "+memory", "+pids", "+cpu" };
        _cleanup_free_ char *avail = NULL;
        int r = 0;

        (void) cgroup_read_file(dir, "cgroup.controllers", &avail);
        for (size_t i = 0; i < ELEMENTSOF(ctrls); i++) {
                if (avail && !strstr(avail, ctrls[i] + 1))
                        continue;
                int k = cgroup_write_file(dir, "cgroup.subtree_control", ctrls[i]);
                if (k < 0 && r == 0)
                        r = k;
        }
        return r;
}

static int v2_setup(CgroupManager *m, const char *root, const char *self_cgroup) {
        _cleanup_free_ char *own = NULL, *own_dir = NULL, *subtree = NULL;
        int r;

        r = cgroup_self_path(self_cgroup, "", &own);
        if (r < 0)
                return log_error_errno(r, "cgroup: cannot find own cgroup (v2): %m");
        if (streq(own, "/"))
                return log_error_errno(EPERM, "cgroup: the daemon runs in the root cgroup; run it in a delegated "
                                              "cgroup (Delegate=yes) so sandboxes are not created at the root");
        if (asprintf(&own_dir, "%s%s", root, own) < 0)
                return -ENOMEM;

        /* No internal processes in v2: move ourselves to a leaf before enabling controllers. */
        (void) cgroup_read_file(own_dir, "cgroup.subtree_control", &subtree);
        if (!subtree || !strstr(subtree, "memory")) {
                _cleanup_free_ char *sup = NULL;
                char pid[32];
                if (asprintf(&sup, "%s/supervisor", own_dir) < 0)
                        return -ENOMEM;
                r = cgroup_mkdir(sup);
                if (r < 0)
                        return log_error_errno(r, "cgroup: cannot create %s: %m", sup);
                snprintf(pid, sizeof(pid), "%d", (int) m->self_pid);
                r = cgroup_write_file(sup, "cgroup.procs", pid);
                if (r < 0)
                        return log_error_errno(r, "cgroup: cannot move the daemon to %s: %m", sup);
                r = enable_controllers(own_dir);
                if (r < 0)
                        return log_error_errno(r, "cgroup: cannot enable controllers in %s (is the cgroup delegated?): %m", own_dir);
        }
        if (asprintf(&m->top[0], "%s/isol8", own_dir) < 0 ||
            asprintf(&m->base[0], "%s/%s", m->top[0], m->name) < 0)
                return -ENOMEM;
        r = cgroup_mkdir(m->top[0]);
        if (r < 0)
                return log_error_errno(r, "cgroup: cannot create %s: %m", m->top[0]);
        (void) enable_controllers(m->top[0]);
        r = cgroup_mkdir(m->base[0]);
        if (r < 0)
                return log_error_errno(r, "cgroup: cannot create %s: %m", m->base[0]);
        (void) enable_controllers(m->base[0]);
        /* Without these every run would fail later: refuse to start, saying why. (A real cgroupfs
         * always has the file; a test's fake tree may not.) */
        {
                _cleanup_free_ char *avail = NULL;
                if (cgroup_read_file(m->base[0], "cgroup.controllers", &avail) >= 0 &&
                    (!strstr(avail, "memory") || !strstr(avail, "pids")))
                        return log_error_errno(EPERM, "cgroup v2: the memory and pids controllers are not available in %s; "
                                               "they must be delegated to the daemon's cgroup (Delegate=yes under systemd)",
                                               m->base[0]);
        }
        m->n = 1;
        return 0;
}

static int v2_write_limits(Cgroup *cg, uint64_t memory, double cpu, uint64_t pids) {
        const char *p = cg->path[0];
        char buf[64];
        int r;

        if (memory > 0)
                snprintf(buf, sizeof(buf), "%" PRIu64, memory);
        r = cgroup_write_file(p, "memory.max", memory > 0 ? buf : "max");
        if (r < 0)
                return r;
        (void) cgroup_write_file(p, "memory.swap.max", "0");
        if (pids > 0)
                snprintf(buf, sizeof(buf), "%" PRIu64, pids);
        r = cgroup_write_file(p, "pids.max", pids > 0 ? buf : "max");
        if (r < 0)
                return r;
        if (cpu > 0)
                snprintf(buf, sizeof(buf), "%" PRIu64 " 100000", (uint64_t) (cpu * 100000));
        return cgroup_write_file(p, "cpu.max", cpu > 0 ? buf : "max 100000");
}

/* Counter files, kept open (cgroup-backend.h). */
enum { C_CPU, C_MEMORY, C_MEMORY_PEAK, C_OOM, C_PIDS_EVENTS, C_CPU_WEIGHT };

static void v2_read_stats(Cgroup *cg, CgroupStats *s) {
        const char *p = cg->path[0];
        uint64_t usage = 0;

        (void) cgroup_counter_keyed(cg, C_CPU, p, "cpu.stat", "usage_usec", &usage);
        s->cpu_usec = usage >= cg->cpu_base_usec ? usage - cg->cpu_base_usec : 0;
        (void) cgroup_counter_u64(cg, C_MEMORY, p, "memory.current", &s->memory_bytes);
        if (cgroup_counter_u64(cg, C_MEMORY_PEAK, p, "memory.peak", &s->memory_peak_bytes) < 0)
                s->memory_peak_bytes = s->memory_bytes;
        (void) cgroup_counter_keyed(cg, C_OOM, p, "memory.events", "oom_kill", &s->oom_kills);
        (void) cgroup_counter_keyed(cg, C_PIDS_EVENTS, p, "pids.events", "max", &s->pids_max_events);
}

static void v2_reset_counters(Cgroup *cg) {
        uint64_t usage = 0;

        /* Through the fd the peak is read from: since Linux 6.12 a reset holds for that fd. */
        (void) cgroup_counter_write(cg, C_MEMORY_PEAK, cg->path[0], "memory.peak", "reset");
        (void) cgroup_counter_keyed(cg, C_CPU, cg->path[0], "cpu.stat", "usage_usec", &usage);
        cg->cpu_base_usec = usage;
}

static int v2_write_cpu_weight(Cgroup *cg, unsigned weight) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%u", weight);
        return cgroup_counter_write(cg, C_CPU_WEIGHT, cg->path[0], "cpu.weight", buf);
}

static void v2_freeze(char *const *path, bool freeze) {
        (void) cgroup_write_file(path[0], "cgroup.freeze", freeze ? "1" : "0");
        /* Freezing is asynchronous; wait a bounded while for it to settle. */
        for (int i = 0; freeze && i < 200; i++) {
                uint64_t frozen;
                if (cgroup_read_keyed(path[0], "cgroup.events", "frozen", &frozen) < 0 || frozen == 1)
                        return;
                nanosleep(&(struct timespec) { 0, 100000 }, NULL);
        }
}

const CgroupBackend cgroup_backend_v2 = {
        .version = CGROUP_V2,
        .setup = v2_setup,
        .write_limits = v2_write_limits,
        .read_stats = v2_read_stats,
        .reset_counters = v2_reset_counters,
        .write_cpu_weight = v2_write_cpu_weight,
        .freeze = v2_freeze,
};
