/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/provider.h"
#include "sandbox/sandbox.h"

/* Warm sandboxes that follow demand. The pool keeps at least `clean` sandboxes warm (ready, or
 * being built or cleaned); on top of that it tracks how many sandboxes runs hold at once
 * (in use plus waiting) and keeps that many plus a little headroom, up to `max_warm`, building
 * them in parallel off the request path; after a quiet period it shrinks back towards the
 * floor. "fast" cleans a used sandbox to serve again while cleaning is cheaper than building
 * one (both are measured); "secure" destroys every used sandbox. */

typedef struct Pool Pool;
typedef struct PoolRequest PoolRequest;

/* sb is NULL when error < 0. The callee owns sb until it hands it back with pool_release(). */
typedef void (*PoolAcquireFn)(Sandbox *sb, int error, void *userdata);

typedef struct PoolConfig {
        bool reuse;                 /* fast: clean and reuse; secure: never */
        unsigned clean;             /* the floor: warm sandboxes kept even when idle */
        unsigned dirty;             /* used sandboxes kept for cleaning, on top of the floor */
        unsigned max_warm;          /* the most sandboxes the pool holds (warm + in use); 0: clean + dirty */
        uint64_t quiet_usec;        /* demand seen within this long still counts; 0: 10 s */
        uint64_t sandbox_bytes;     /* sizes of a fresh sandbox */
        uint64_t tmp_bytes;
        const char *image_dir;      /* a runtime image's pool: its layer, and where it goes */
        const char *image_target;
} PoolConfig;

int pool_new(Pool **ret, const SandboxProvider *provider, const PoolConfig *config);
Pool *pool_free(Pool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pool *, pool_free);
void pool_replenish(Pool *p);
/* Returns 1 with *ret_sb when a ready sandbox is there, 0 with *ret_req when cb follows. */
int pool_acquire(Pool *p, PoolAcquireFn cb, void *userdata, Sandbox **ret_sb, PoolRequest **ret_req);
void pool_request_cancel(PoolRequest *req);
/* A sandbox from pool_acquire() comes back after a run (cleaned or destroyed). */
void pool_release(Pool *p, Sandbox *sb);
/* A sandbox from pool_acquire() will not come back (a session keeps it): no longer demand. */
void pool_forget(Pool *p, Sandbox *sb);
unsigned pool_flush(Pool *p);
unsigned pool_n_ready(Pool *p);
unsigned pool_n_total(Pool *p);

typedef struct PoolStats {
        unsigned ready, building, cleaning, in_use, waiting;
        unsigned demand;            /* sandboxes runs held at once, recently */
        unsigned target;            /* warm sandboxes the pool aims for now */
        uint64_t build_usec;        /* measured cost of building one (moving average) */
        uint64_t clean_usec;        /* ... and of cleaning one */
        uint64_t built, cleaned, destroyed;
} PoolStats;
void pool_stats(Pool *p, PoolStats *ret);
