/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "core/cpu-order.h"
#include "shared/list.h"
#include "shared/log.h"
#include "shared/time-util.h"

struct CpuOrder {
        sd_event *event;
        sd_event_source *timer;     /* when the first leader's lead is up, or (runs waiting) the oldest young run ages */
        uint64_t first_usec;
        unsigned leaders;
        uint64_t young_usec;
        unsigned young_max;
        CpuOrderEntry *head, *tail; /* in the order the runs started */
        CpuOrderEntry *wait_head, *wait_tail; /* runs not started yet, in the order they came */
        bool busy, again;
};

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void set_weight(CpuOrderEntry *e, unsigned w) {
        cgroup_set_cpu_weight(e->cgroup, w);   /* writes only a change */
        e->weight = w;
}

/* The runs in their first young_usec, and the oldest of them (the next to age). */
static unsigned count_young(CpuOrder *o, uint64_t now, CpuOrderEntry **ret_oldest) {
        unsigned n = 0;
        *ret_oldest = NULL;
        for (CpuOrderEntry *e = o->head; e; e = e->next)
                if (!e->ended && e->started_usec + o->young_usec > now && n++ == 0)
                        *ret_oldest = e;
        return n;
}

/* The lead goes to the oldest runs that have not had it for first_usec yet, up to o->leaders of
 * them. Runs are listed in the order they started, so those past their time form the front of
 * the line, and the first leader's time is the next to run out. */
static void update(CpuOrder *o, uint64_t now) {
        CpuOrderEntry *first = NULL, *young;
        uint64_t next = UINT64_MAX;
        unsigned n = 0;
        int r;

        for (CpuOrderEntry *e = o->head; e; e = e->next) {
                bool lead = n < o->leaders && e->started_usec + o->first_usec > now;
                if (lead && n++ == 0)
                        first = e;
                set_weight(e, lead ? CPU_WEIGHT_FIRST : CPU_WEIGHT_RUN);
        }
        if (first)
                next = first->started_usec + o->first_usec;
        if (o->wait_head && count_young(o, now, &young) > 0)
                next = MIN(next, young->started_usec + o->young_usec);
        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(o->timer, SD_EVENT_OFF);
                return;
        }
        r = sd_event_source_set_time(o->timer, next);
        if (r >= 0)
                r = sd_event_source_set_enabled(o->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "cpu order: cannot arm the lead's timer: %m");
}

static void list_entry(CpuOrder *o, CpuOrderEntry *e, uint64_t now) {
        e->started_usec = now;
        e->listed = true;
        LIST_APPEND(o->head, o->tail, e);
}

/* The first waiting run, if fewer than young_max runs started in the last young_usec. */
static CpuOrderEntry *admit_one(CpuOrder *o, uint64_t now) {
        CpuOrderEntry *e = o->wait_head, *young;

        if (!e || count_young(o, now, &young) >= o->young_max)
                return NULL;
        LIST_REMOVE_TAIL(o->wait_head, o->wait_tail, e);
        e->waiting = false;
        list_entry(o, e, now);
        return e;
}

/* Weights, the timer, and the waiting runs that may start. A run's start may end runs or add
 * them (its callback fails, say): those calls only change the lists, and the loop goes on. */
static void pick(CpuOrder *o) {
        if (o->busy) {
                o->again = true;
                return;
        }
        o->busy = true;
        for (;;) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                CpuOrderEntry *e;

                o->again = false;
                e = admit_one(o, now);
                update(o, now);
                if (e)
                        e->start(e->userdata);
                else if (!o->again)
                        break;
        }
        o->busy = false;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        pick(userdata);
        return 0;
}

int cpu_order_new(sd_event *event, uint64_t first_usec, unsigned leaders, uint64_t young_usec, unsigned young_max,
                  CpuOrder **ret) {
        CpuOrder *o = calloc(1, sizeof(*o));
        int r;

        if (!o)
                return -ENOMEM;
        o->event = sd_event_ref(event);
        o->first_usec = first_usec;
        o->leaders = MAX(leaders, 1u);
        o->young_usec = young_usec;
        o->young_max = young_max > 0 && young_usec > 0 ? young_max : UINT_MAX;
        /* 1 ms of accuracy: the lead changing hands a little late costs nothing. */
        r = sd_event_add_time(event, &o->timer, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC, on_timer, o);
        if (r < 0) {
                cpu_order_free(o);
                return r;
        }
        (void) sd_event_source_set_enabled(o->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(o->timer, "cpu-order");
        *ret = o;
        return 0;
}

CpuOrder *cpu_order_free(CpuOrder *o) {
        if (!o)
                return NULL;
        for (CpuOrderEntry *e = o->head, *next; e; e = next) {
                next = e->next;
                *e = (CpuOrderEntry) {};
        }
        for (CpuOrderEntry *e = o->wait_head, *next; e; e = next) {
                next = e->next;
                *e = (CpuOrderEntry) {};
        }
        sd_event_source_disable_unref(o->timer);
        sd_event_unref(o->event);
        free(o);
        return NULL;
}

int cpu_order_add(CpuOrder *o, CpuOrderEntry *e, Cgroup *cg, CpuOrderStartFn start, void *userdata) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        CpuOrderEntry *young;

        cpu_order_remove(o, e);
        *e = (CpuOrderEntry) { .cgroup = cg, .start = start, .userdata = userdata };
        if (o->wait_head || count_young(o, now, &young) >= o->young_max) {
                e->waiting = true;
                LIST_APPEND(o->wait_head, o->wait_tail, e);
                pick(o);   /* arms the timer for the oldest young run */
                return 0;
        }
        list_entry(o, e, now);
        pick(o);
        return 1;
}

void cpu_order_remove(CpuOrder *o, CpuOrderEntry *e) {
        if (e->waiting) {
                LIST_REMOVE_TAIL(o->wait_head, o->wait_tail, e);
                *e = (CpuOrderEntry) {};
                pick(o);
                return;
        }
        if (!e->listed)
                return;
        LIST_REMOVE_TAIL(o->head, o->tail, e);
        cgroup_set_cpu_weight(e->cgroup, CPU_WEIGHT_IDLE);
        *e = (CpuOrderEntry) {};
        pick(o);
}

void cpu_order_program_ended(CpuOrder *o, CpuOrderEntry *e) {
        if (!e->listed || e->ended)
                return;
        e->ended = true;
        if (o->wait_head)
                pick(o);
}

bool cpu_order_leads(const CpuOrderEntry *e) {
        return e->listed && e->weight == CPU_WEIGHT_FIRST;
}
