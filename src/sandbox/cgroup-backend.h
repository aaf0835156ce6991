/* SPDX-License-Identifier: MIT */
#pragma once

/* Inside the cgroup module: what sandbox/cgroup.c (the common part) shares with its two
 * backends, sandbox/cgroup-v1.c and sandbox/cgroup-v2.c. Not for use outside these files. */

#include <stdbool.h>
#include <stdint.h>

#include "sandbox/cgroup.h"

/* v1 controllers, in the order used; the first is where processes are listed. v2 has one
 * directory per group ([0]). */
enum { V1_MEMORY, V1_PIDS, V1_CPU, V1_CPUACCT, V1_FREEZER, _V1_MAX };
#define CGROUP_DIRS_MAX _V1_MAX

typedef struct CgroupBackend {
        CgroupVersion version;
        /* Finds our place in the hierarchy and creates m->top[] and m->base[] (m->n of them). */
        int (*setup)(CgroupManager *m, const char *root, const char *self_cgroup);
        int (*write_limits)(Cgroup *cg, uint64_t memory, double cpu, uint64_t pids);
        void (*read_stats)(Cgroup *cg, CgroupStats *ret);
        void (*reset_counters)(Cgroup *cg);
        int (*write_cpu_weight)(Cgroup *cg, unsigned weight);
        /* Freezes (and waits, bounded, for it to settle) or thaws a group. */
        void (*freeze)(char *const *path, bool freeze);
} CgroupBackend;

extern const CgroupBackend cgroup_backend_v1;
extern const CgroupBackend cgroup_backend_v2;

struct CgroupManager {
        const CgroupBackend *backend;
        pid_t self_pid;
        char name[64];          /* our directory below .../isol8: "d<pid>" (or "d<pid>.<n>" if taken) */
        char *lock_dir;         /* where each daemon holds <name>.lock while it lives (NULL: none) */
        int lock_fd;
        /* "<mount><own>/isol8" and ".../d<pid>", one per directory of the backend */
        char *top[CGROUP_DIRS_MAX];
        char *base[CGROUP_DIRS_MAX];
        unsigned n;
};

/* The counter files a run reads and resets, kept open for the cgroup's life: a cgroupfs file
 * read again from offset 0 gives fresh figures, so a run costs a pread() per counter, not an
 * open, a read and a close (kernfs opens are what the daemon spent most of its time on). One
 * fd per file for both reading and resetting: on cgroup v2 a reset of memory.peak holds for the
 * fd that wrote it. */
#define CGROUP_COUNTERS_MAX 8

struct Cgroup {
        CgroupManager *manager;
        char *path[CGROUP_DIRS_MAX];
        int counter_fd[CGROUP_COUNTERS_MAX];
        uint64_t cpu_base_usec;   /* v2 CPU time cannot be reset: remember where a run started */
        bool limits_set;          /* the limits below are what the files hold */
        uint64_t memory;
        double cpu;
        uint64_t pids;
        uint64_t last_oom_kills;
        uint64_t last_pids_max_events;
        unsigned cpu_weight;      /* what cpu.weight (cpu.shares) holds; 0: the default, never written */
        bool no_cpu_weight;       /* the file is not there (no cpu controller): not tried again */
};

/* Files of cgroupfs. */
int cgroup_write_file(const char *dir, const char *file, const char *value);
bool cgroup_file_exists(const char *dir, const char *file);
int cgroup_read_file(const char *dir, const char *file, char **ret);
int cgroup_read_u64(const char *dir, const char *file, uint64_t *ret);
/* "key value" lines, as in memory.events, cpu.stat, memory.oom_control, pids.events. */
int cgroup_read_keyed(const char *dir, const char *file, const char *key, uint64_t *ret);
int cgroup_mkdir(const char *p);
/* A counter file of cg (slot: the backend's number for it, below CGROUP_COUNTERS_MAX). */
int cgroup_counter_u64(Cgroup *cg, unsigned slot, const char *dir, const char *file, uint64_t *ret);
int cgroup_counter_keyed(Cgroup *cg, unsigned slot, const char *dir, const char *file, const char *key, uint64_t *ret);
int cgroup_counter_write(Cgroup *cg, unsigned slot, const char *dir, const char *file, const char *value);
