/* SPDX-License-Identifier: MIT */
/* The execution queue: slots, waiting places, per-tenant bounds, round robin, timeouts. */
#include <errno.h>
#include <stdio.h>

#include "core/queue.h"
#include "shared/time-util.h"
#include "tap.h"

typedef struct Waiter {
        const char *tenant;
        int error;
        unsigned calls;
        unsigned order;
        ExecQueueWaiter *w;
} Waiter;

static unsigned granted;

static void on_slot(int error, void *userdata) {
        Waiter *w = userdata;
        w->error = error;
        w->calls++;
        w->order = ++granted;
        w->w = NULL;
}

int main(void) {
        sd_event *e = NULL;
        ExecQueue *q = NULL;
        Waiter a1 = { "a" }, a2 = { "a" }, a3 = { "a" }, b1 = { "b" }, c1 = { "c" };

        CHECK(sd_event_new(&e) >= 0);
        /* 2 slots, 4 waiting places, at most 2 per tenant, 50 ms in line. */
        CHECK(exec_queue_new(&q, e, 2, 4, 2, 50) == 0);
        CHECK(exec_queue_acquire(q, "a", on_slot, &a1, &a1.w) == 1);   /* a free slot: at once */
        CHECK(exec_queue_acquire(q, "a", on_slot, &a1, &a1.w) == 1);
        CHECK(exec_queue_running(q) == 2 && exec_queue_pending(q) == 0);
        /* Full: tenant a queues twice, then is refused its third place (per-tenant bound). */
        CHECK(exec_queue_acquire(q, "a", on_slot, &a2, &a2.w) == 0 && a2.w);
        CHECK(exec_queue_acquire(q, "a", on_slot, &a3, &a3.w) == 0 && a3.w);
        Waiter a4 = { "a" };
        CHECK(exec_queue_acquire(q, "a", on_slot, &a4, &a4.w) == -EBUSY);
        CHECK(exec_queue_acquire(q, "b", on_slot, &b1, &b1.w) == 0);
        CHECK(exec_queue_acquire(q, "c", on_slot, &c1, &c1.w) == 0);
        CHECK(exec_queue_pending(q) == 4);
        Waiter d1 = { "d" };
        CHECK(exec_queue_acquire(q, "d", on_slot, &d1, &d1.w) == -EBUSY);   /* the line is full */
        /* Round robin: a was served last, so b and c go before a's second waiter. */
        exec_queue_release(q);
        exec_queue_release(q);
        CHECK(b1.calls == 1 && c1.calls == 1 && a2.calls == 0);
        exec_queue_release(q);
        CHECK(a2.calls == 1 && a2.error == 0 && a2.order == 3);
        CHECK(exec_queue_running(q) == 2 && exec_queue_pending(q) == 1);
        /* A cancelled waiter is never called, and leaves the line. */
        exec_queue_cancel(a3.w);
        CHECK(exec_queue_pending(q) == 0);
        exec_queue_release(q);
        exec_queue_release(q);
        CHECK(a3.calls == 0 && exec_queue_running(q) == 0);
        /* A waiter past the timeout gets -ETIMEDOUT. */
        CHECK(exec_queue_acquire(q, "a", on_slot, &a1, &a1.w) == 1);
        CHECK(exec_queue_acquire(q, "a", on_slot, &a1, &a1.w) == 1);
        Waiter t = { "t" };
        CHECK(exec_queue_acquire(q, "t", on_slot, &t, &t.w) == 0);
        uint64_t start = now_usec(CLOCK_MONOTONIC);
        while (t.calls == 0 && now_usec(CLOCK_MONOTONIC) - start < 5 * USEC_PER_SEC)
                (void) sd_event_run(e, 100 * USEC_PER_MSEC);
        CHECK(t.calls == 1 && t.error == -ETIMEDOUT);
        CHECK(exec_queue_pending(q) == 0);
        /* One timer for the line: two waiters 30 ms apart time out one after the other, the
         * oldest first, and a cancelled oldest one passes the timer on to the next. */
        Waiter o1 = { "o" }, o2 = { "p" }, o3 = { "q" };
        CHECK(exec_queue_acquire(q, "o", on_slot, &o1, &o1.w) == 0);
        start = now_usec(CLOCK_MONOTONIC);
        while (now_usec(CLOCK_MONOTONIC) - start < 30 * USEC_PER_MSEC)
                (void) sd_event_run(e, 5 * USEC_PER_MSEC);
        CHECK(exec_queue_acquire(q, "p", on_slot, &o2, &o2.w) == 0);
        CHECK(exec_queue_acquire(q, "q", on_slot, &o3, &o3.w) == 0);
        exec_queue_cancel(o2.w);
        while (o3.calls == 0 && now_usec(CLOCK_MONOTONIC) - start < 5 * USEC_PER_SEC)
                (void) sd_event_run(e, 5 * USEC_PER_MSEC);
        CHECK(o1.calls == 1 && o1.error == -ETIMEDOUT);
        CHECK(o3.calls == 1 && o3.error == -ETIMEDOUT && o2.calls == 0);
        CHECK(o1.order < o3.order);
        CHECK(exec_queue_pending(q) == 0);
        exec_queue_free(q);
        sd_event_unref(e);
        return tap_done();
}
