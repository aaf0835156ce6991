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
 * loses the lead after first_usec (config cpuLeadMs), so short runs are not kept behind it.
 *
 * Starts are paced too: at most `young_max` runs (three for every two cores) may be in their
 * first `young_usec` (config cpuStartMs) with their program running; a run beyond them waits, in
 * the order they came, until one of them ends, its program exits or it ages (held until the
 * answer, a start left the CPUs idle while the daemon composed answers: 8% fewer runs/s). With
 * eight clients on two cores every run started at once and the slowest 1% waited behind the
 * others' programs and inits (p99 29 ms); paced, they wait before starting, in order, and a run
 * once started is seldom preempted (p99 20 ms, as many runs per second within this machine's
 * noise; docs/performance.md). A run that sleeps holds a start for at most young_usec. */

#define CPU_WEIGHT_FIRST 800u
#define CPU_WEIGHT_RUN 25u
#define CPU_WEIGHT_IDLE 1u
/* How many runs may be starting at once on so many cores: 2 on one, 3 on two, 6 on four. */
#define CPU_STARTS(cores) ((cores) + ((cores) + 1) / 2)

typedef struct CpuOrder CpuOrder;

/* A waiting run may start now. */
typedef void (*CpuOrderStartFn)(void *userdata);

/* One run's place in the line, kept in the run's own structure. */
typedef struct CpuOrderEntry {
        struct CpuOrderEntry *prev, *next;
        Cgroup *cgroup;
        uint64_t started_usec;      /* CLOCK_MONOTONIC */
        unsigned weight;            /* what its cgroup was last given (0: nothing yet) */
        CpuOrderStartFn start;
        void *userdata;
        bool listed;                /* running */
        bool waiting;               /* not started yet */
        bool ended;                 /* its program is over */
} CpuOrderEntry;

/* leaders: how many of the oldest runs lead at once (the cores the runs share; at least 1).
 * young_max runs may be in their first young_usec at once (0: no limit). */
int cpu_order_new(sd_event *event, uint64_t first_usec, unsigned leaders, uint64_t young_usec, unsigned young_max,
                  CpuOrder **ret);
/* Entries still listed are forgotten (their cgroups are not touched). */
CpuOrder *cpu_order_free(CpuOrder *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(CpuOrder *, cpu_order_free);
/* A run is about to start in cg. 1: it may, and joins the end of the line. 0: it waits, and
 * start(userdata) is called when it joins the line (at once, before this returns, if the runs
 * waiting before it may start too). */
int cpu_order_add(CpuOrder *o, CpuOrderEntry *e, Cgroup *cg, CpuOrderStartFn start, void *userdata);
/* The run is over: its sandbox gets the idle weight, the next run may take the lead. A no-op
 * for an entry not listed. */
void cpu_order_remove(CpuOrder *o, CpuOrderEntry *e);
/* The run's program has ended (the run waits for its answer now): it no longer counts as
 * starting, and a waiting run may take its start. */
void cpu_order_program_ended(CpuOrder *o, CpuOrderEntry *e);
/* Whether the run has the lead now (for tests). */
bool cpu_order_leads(const CpuOrderEntry *e);
