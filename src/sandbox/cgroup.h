/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/macro.h"

/* Sandbox cgroups, always below the daemon's own cgroup: <own>/isol8/d<daemon pid>/<name>.
 * Two backends behind one interface: the unified hierarchy (v2, with a delegated subtree) and
 * the legacy per-controller hierarchies (v1: memory, pids, cpu, cpuacct, freezer). */

typedef enum CgroupVersion {
        CGROUP_V1 = 1,
        CGROUP_V2 = 2,
} CgroupVersion;

typedef struct CgroupManager CgroupManager;
typedef struct Cgroup Cgroup;

typedef struct CgroupStats {
        uint64_t cpu_usec;
        uint64_t memory_bytes;
        uint64_t memory_peak_bytes;
        uint64_t oom_kills;
        uint64_t pids_max_events;     /* forks refused by the pids limit */
} CgroupStats;

/* root: the cgroupfs mount point ("/sys/fs/cgroup", or a fake tree in tests); self_cgroup: the
 * text of /proc/self/cgroup; version 0 detects it from root. */
/* lock_dir: where the daemon holds a lock naming its cgroup directory while it lives, which is how
 * cgroup_manager_reclaim() tells live daemons' directories from dead ones' (NULL: by pid). */
int cgroup_manager_new(CgroupManager **ret, const char *root, CgroupVersion version,
                       const char *self_cgroup, pid_t self_pid, const char *lock_dir);
/* Removes the per-daemon directory (every sandbox cgroup must be destroyed first). */
CgroupManager *cgroup_manager_free(CgroupManager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(CgroupManager *, cgroup_manager_free);
CgroupVersion cgroup_manager_version(CgroupManager *m);
/* Kills and removes what daemons that are no longer running left below <own>/isol8. Returns
 * the number of directories reclaimed. */
int cgroup_manager_reclaim(CgroupManager *m);
/* The directory that holds this daemon's sandbox cgroups (for the first controller). */
const char *cgroup_manager_base(CgroupManager *m);

int cgroup_create(CgroupManager *m, const char *name, Cgroup **ret);
/* Kills every process left, removes the directories and frees cg. */
Cgroup *cgroup_destroy(Cgroup *cg);
DEFINE_TRIVIAL_CLEANUP_FUNC(Cgroup *, cgroup_destroy);
int cgroup_attach(Cgroup *cg, pid_t pid);
/* memory in bytes (0: unlimited), cpu as a fraction of CPUs (<= 0: unlimited), pids (0: unlimited). */
int cgroup_set_limits(Cgroup *cg, uint64_t memory, double cpu, uint64_t pids);
int cgroup_read_stats(Cgroup *cg, CgroupStats *ret);
/* OOM kills and refused forks counted up to the last cgroup_read_stats() (0 for a new group). */
void cgroup_event_baseline(Cgroup *cg, uint64_t *ret_oom_kills, uint64_t *ret_pids_max_events);
/* The group's share of the CPU against its siblings (the other sandboxes), in cgroup v2's
 * cpu.weight units (1-10000, 100 the default; v1's cpu.shares get the same ratio). A weight the
 * group already has costs nothing; a failure (no cpu controller) is ignored. */
void cgroup_set_cpu_weight(Cgroup *cg, unsigned weight);
/* Resets what can be reset between two runs (peak memory, CPU time on v1). */
void cgroup_reset_counters(Cgroup *cg);
/* Bytes the group may still charge under its memory limit (0 when at or over it), or UINT64_MAX
 * when no limit was set through cgroup_set_limits(). */
uint64_t cgroup_memory_available(Cgroup *cg);
/* Freezes the group, SIGKILLs every process in it except `except` (0: none), thaws it. Returns
 * the number of processes signalled. */
int cgroup_kill_all(Cgroup *cg, pid_t except);
/* pids in the group (first controller), for tests and leak checks. */
int cgroup_count_procs(Cgroup *cg);

/* Parses "0::/a/b" (v2) or "4:memory:/x" (v1) lines: the path of `controller` ("" for v2). */
int cgroup_self_path(const char *self_cgroup, const char *controller, char **ret);
