/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"

/* The server-wide limit of running executions with a bounded FIFO of waiters. */

typedef struct ExecQueue ExecQueue;
typedef struct ExecQueueWaiter ExecQueueWaiter;

/* error 0: a slot is granted (give it back with exec_queue_release); -ETIMEDOUT: waited too long. */
typedef void (*ExecQueueFn)(int error, void *userdata);

/* max_per_tenant: how many of the waiting places one tenant may hold (fairness). */
int exec_queue_new(ExecQueue **ret, sd_event *event, unsigned max_concurrent, unsigned max_queue, unsigned max_per_tenant,
                   uint64_t timeout_ms);
ExecQueue *exec_queue_free(ExecQueue *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(ExecQueue *, exec_queue_free);
/* 1: granted now. 0: queued, cb follows. -EBUSY: the queue is full, or holds the tenant's share. */
int exec_queue_acquire(ExecQueue *q, const char *tenant, ExecQueueFn cb, void *userdata, ExecQueueWaiter **ret);
void exec_queue_cancel(ExecQueueWaiter *w);
void exec_queue_release(ExecQueue *q);
unsigned exec_queue_running(ExecQueue *q);
unsigned exec_queue_pending(ExecQueue *q);
unsigned exec_queue_max(ExecQueue *q);
unsigned exec_queue_max_size(ExecQueue *q);
uint64_t exec_queue_timeout_ms(ExecQueue *q);
