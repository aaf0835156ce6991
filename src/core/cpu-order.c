/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "core/cpu-order.h"
#include "shared/list.h"
#include "shared/log.h"
#include "shared/time-util.h"

struct CpuOrder {
        sd_event *event;
        sd_event_source *timer;     /* when the leading run's time in the lead is up */
        uint64_t first_usec;
        unsigned leaders;
        CpuOrderEntry *head, *tail; /* in the order the runs started */
};

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void set_weight(CpuOrderEntry *e, unsigned w) {
        cgroup_set_cpu_weight(e->cgroup, w);   /* writes only a change */
        e->weight = w;
}

/* The lead goes to the oldest runs that have not had it for first_usec yet, up to o->leaders of
 * them. Runs are listed in the order they started, so those past their time form the front of
 * the line, and the first leader's time is the next to run out. */
static void pick(CpuOrder *o) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        CpuOrderEntry *first = NULL;
        unsigned n = 0;
        int r;

        for (CpuOrderEntry *e = o->head; e; e = e->next) {
                bool lead = n < o->leaders && e->started_usec + o->first_usec > now;
                if (lead && n++ == 0)
                        first = e;
                set_weight(e, lead ? CPU_WEIGHT_FIRST : CPU_WEIGHT_RUN);
        }
        if (!first) {
                (void) sd_event_source_set_enabled(o->timer, SD_EVENT_OFF);
                return;
        }
        r = sd_event_source_set_time(o->timer, first->started_usec + o->first_usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(o->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "cpu order: cannot arm the lead's timer: %m");
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        pick(userdata);
        return 0;
}

int cpu_order_new(sd_event *event, uint64_t first_usec, unsigned leaders, CpuOrder **ret) {
        CpuOrder *o = calloc(1, sizeof(*o));
        int r;

        if (!o)
                return -ENOMEM;
        o->event = sd_event_ref(event);
        o->first_usec = first_usec;
        o->leaders = MAX(leaders, 1u);
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
        sd_event_source_disable_unref(o->timer);
        sd_event_unref(o->event);
        free(o);
        return NULL;
}

void cpu_order_add(CpuOrder *o, CpuOrderEntry *e, Cgroup *cg) {
        if (e->listed)
                cpu_order_remove(o, e);
        *e = (CpuOrderEntry) { .cgroup = cg, .started_usec = now_usec(CLOCK_MONOTONIC), .listed = true };
        LIST_APPEND(o->head, o->tail, e);
        pick(o);
}

void cpu_order_remove(CpuOrder *o, CpuOrderEntry *e) {
        if (!e->listed)
                return;
        LIST_REMOVE_TAIL(o->head, o->tail, e);
        cgroup_set_cpu_weight(e->cgroup, CPU_WEIGHT_IDLE);
        *e = (CpuOrderEntry) {};
        pick(o);
}

bool cpu_order_leads(const CpuOrderEntry *e) {
        return e->listed && e->weight == CPU_WEIGHT_FIRST;
}
