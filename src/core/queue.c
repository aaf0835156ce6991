/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include <stdio.h>
#include <string.h>

#include "core/queue.h"
#include "shared/list.h"
#include "shared/time-util.h"
#include "shared/util.h"

struct ExecQueueWaiter {
        ExecQueue *queue;
        char tenant[129];
        ExecQueueFn cb;
        void *userdata;
        uint64_t deadline;            /* CLOCK_MONOTONIC */
        ExecQueueWaiter *prev, *next;
};

#define SERVED_MAX 64

/* When each tenant last got a slot (by grant number): the next slot goes to the waiting tenant
 * served longest ago, so tenants take turns whatever their share of the queue. */
typedef struct Served {
        char tenant[129];
        uint64_t serial;
} Served;

struct ExecQueue {
        sd_event *event;
        Served served[SERVED_MAX];
        uint64_t grants;
        unsigned max_concurrent;
        unsigned max_queue;
        unsigned max_per_tenant;
        uint64_t timeout_ms;
        unsigned running;
        unsigned pending;
        /* In arrival order, so the oldest waiter's deadline is the next: one timer for the
         * whole line, not one per waiting request. */
        ExecQueueWaiter *head, *tail;
        sd_event_source *timer;
};

int exec_queue_new(ExecQueue **ret, sd_event *event, unsigned max_concurrent, unsigned max_queue, unsigned max_per_tenant,
                   uint64_t timeout_ms) {
        ExecQueue *q = calloc(1, sizeof(ExecQueue));
        if (!q)
                return -ENOMEM;
        q->event = sd_event_ref(event);
        q->max_concurrent = max_concurrent;
        q->max_queue = max_queue;
        /* By default one tenant may hold a quarter of the waiting places. */
        q->max_per_tenant = max_per_tenant ? max_per_tenant : MAX(max_queue / 4, 1u);
        q->timeout_ms = timeout_ms;
        *ret = q;
        return 0;
}

static void unlink_waiter(ExecQueueWaiter *w) {
        ExecQueue *q = w->queue;
        LIST_REMOVE_TAIL(q->head, q->tail, w);
        q->pending--;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata);

/* The timer follows the oldest waiter. */
static void arm_timer(ExecQueue *q) {
        if (!q->head) {
                if (q->timer)
                        (void) sd_event_source_set_enabled(q->timer, SD_EVENT_OFF);
                return;
        }
        if (!q->timer) {
                if (sd_event_add_time(q->event, &q->timer, CLOCK_MONOTONIC, q->head->deadline, 1000, on_timeout, q) < 0)
                        return;
                (void) sd_event_source_set_description(q->timer, "queue-wait");
        } else
                (void) sd_event_source_set_time(q->timer, q->head->deadline);
        (void) sd_event_source_set_enabled(q->timer, SD_EVENT_ONESHOT);
}

ExecQueue *exec_queue_free(ExecQueue *q) {
        if (!q)
                return NULL;
        while (q->head) {
                ExecQueueWaiter *w = q->head;
                unlink_waiter(w);
                w->cb(-ESHUTDOWN, w->userdata);
                free(w);
        }
        sd_event_source_disable_unref(q->timer);
        sd_event_unref(q->event);
        free(q);
        return NULL;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        ExecQueue *q = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        /* Every waiter whose time is up (the oldest first); the callbacks may queue again. */
        while (q->head && q->head->deadline <= now) {
                ExecQueueWaiter *w = q->head;
                unlink_waiter(w);
                w->cb(-ETIMEDOUT, w->userdata);
                free(w);
        }
        arm_timer(q);
        return 0;
}

static void mark_served(ExecQueue *q, const char *tenant);

int exec_queue_acquire(ExecQueue *q, const char *tenant, ExecQueueFn cb, void *userdata, ExecQueueWaiter **ret) {
        ExecQueueWaiter *w;
        unsigned mine = 0;

        if (q->running < q->max_concurrent && !q->head) {
                q->running++;
                mark_served(q, tenant ?: "");
                return 1;
        }
        if (q->pending >= q->max_queue)
                return -EBUSY;
        for (w = q->head; w; w = w->next)
                mine += strcmp(w->tenant, tenant ?: "") == 0;
        if (mine >= q->max_per_tenant)
                return -EBUSY;   /* one tenant may not take every waiting place */
        w = calloc(1, sizeof(ExecQueueWaiter));
        if (!w)
                return -ENOMEM;
        w->queue = q;
        snprintf(w->tenant, sizeof(w->tenant), "%s", tenant ?: "");
        w->cb = cb;
        w->userdata = userdata;
        w->deadline = now_usec(CLOCK_MONOTONIC) + q->timeout_ms * USEC_PER_MSEC;
        LIST_APPEND(q->head, q->tail, w);
        q->pending++;
        if (q->head == w)
                arm_timer(q);
        *ret = w;
        return 0;
}

void exec_queue_cancel(ExecQueueWaiter *w) {
        ExecQueue *q;

        if (!w)
                return;
        q = w->queue;
        unlink_waiter(w);
        free(w);
        arm_timer(q);
}

static Served *served_of(ExecQueue *q, const char *tenant) {
        for (size_t i = 0; i < SERVED_MAX; i++)
                if (q->served[i].serial && streq(q->served[i].tenant, tenant))
                        return &q->served[i];
        return NULL;
}

static void mark_served(ExecQueue *q, const char *tenant) {
        Served *s = served_of(q, tenant);
        if (!s) {
                /* The entry served longest ago (or a free one) makes room. */
                s = &q->served[0];
                for (size_t i = 1; i < SERVED_MAX; i++)
                        if (q->served[i].serial < s->serial)
                                s = &q->served[i];
                snprintf(s->tenant, sizeof(s->tenant), "%s", tenant);
        }
        s->serial = ++q->grants;
}

void exec_queue_release(ExecQueue *q) {
        ExecQueueWaiter *w = q->head, *best = NULL;
        uint64_t best_serial = UINT64_MAX;

        if (!w) {
                if (q->running > 0)
                        q->running--;
                return;
        }
        /* Round robin between tenants: the first waiter of the tenant served longest ago. */
        for (; w; w = w->next) {
                Served *s = served_of(q, w->tenant);
                uint64_t serial = s ? s->serial : 0;
                if (serial < best_serial) {
                        best = w;
                        best_serial = serial;
                        if (serial == 0)
                                break;
                }
        }
        unlink_waiter(best);
        arm_timer(q);
        mark_served(q, best->tenant);
        best->cb(0, best->userdata);
        free(best);
}

unsigned exec_queue_running(ExecQueue *q) { return q->running; }
unsigned exec_queue_pending(ExecQueue *q) { return q->pending; }
unsigned exec_queue_max(ExecQueue *q) { return q->max_concurrent; }
unsigned exec_queue_max_size(ExecQueue *q) { return q->max_queue; }
uint64_t exec_queue_timeout_ms(ExecQueue *q) { return q->timeout_ms; }
