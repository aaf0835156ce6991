/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "sandbox/cgroup.h"
#include "shared/macro.h"

/* The CPU among running sandboxes: the oldest runs first. With more runs than cores the kernel
 * shares the CPU out evenly, and on two cores its unevenness made the slowest 1% of short runs
 * take three times their fair turn. Instead the oldest runs, one per core (`leaders`), get a
 * larger share (their cgroups' CPU weight, FIRST against RUN) until they end or have run for
 * `first_usec`, and a sandbox between runs (its init cleaning it, or idle) gets a small one
 * (IDLE), so that a clean never takes CPU a run could use. One leader for all cores was not
 * enough once cleans got short: the other core was shared evenly among all the rest again.
 * Weights only divide the CPU when it is contended; the CPU limits stay as they are. A long run
 * loses the lead after first_usec (config cpuLeadMs), so short runs are not kept behind it. */

#define CPU_WEIGHT_FIRST 800u
#define CPU_WEIGHT_RUN 25u
#define CPU_WEIGHT_IDLE 1u

typedef struct CpuOrder CpuOrder;

/* One run's place in the line, kept in the run's own structure. */
typedef struct CpuOrderEntry {
        struct CpuOrderEntry *prev, *next;
        Cgroup *cgroup;
        uint64_t started_usec;      /* CLOCK_MONOTONIC */
        unsigned weight;            /* what its cgroup was last given (0: nothing yet) */
        bool listed;
} CpuOrderEntry;

/* leaders: how many of the oldest runs lead at once (the cores the runs share; at least 1). */
int cpu_order_new(sd_event *event, uint64_t first_usec, unsigned leaders, CpuOrder **ret);
/* Entries still listed are forgotten (their cgroups are not touched). */
CpuOrder *cpu_order_free(CpuOrder *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(CpuOrder *, cpu_order_free);
/* A run starts in cg: it joins the end of the line. */
void cpu_order_add(CpuOrder *o, CpuOrderEntry *e, Cgroup *cg);
/* The run is over: its sandbox gets the idle weight, the next run may take the lead. A no-op
 * for an entry not listed. */
void cpu_order_remove(CpuOrder *o, CpuOrderEntry *e);
/* Whether the run has the lead now (for tests). */
bool cpu_order_leads(const CpuOrderEntry *e);
