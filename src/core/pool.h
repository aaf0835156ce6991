/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/provider.h"
#include "sandbox/sandbox.h"

/* Warm sandboxes. "fast" keeps `clean` sandboxes ready and cleans used ones in the background
 * (up to `dirty` at a time) to serve again; "secure" destroys every used sandbox and keeps
 * `clean` fresh ones ready. */

typedef struct Pool Pool;
typedef struct PoolRequest PoolRequest;

/* sb is NULL when error < 0. The callee owns sb until it hands it back with pool_release(). */
typedef void (*PoolAcquireFn)(Sandbox *sb, int error, void *userdata);

typedef struct PoolConfig {
        bool reuse;                 /* fast: clean and reuse; secure: never */
        unsigned clean;
        unsigned dirty;
        uint64_t sandbox_bytes;     /* sizes of a fresh sandbox */
        uint64_t tmp_bytes;
} PoolConfig;

int pool_new(Pool **ret, const SandboxProvider *provider, const PoolConfig *config);
Pool *pool_free(Pool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pool *, pool_free);
/* Fills the pool up to its size (called at start and after every change). */
void pool_replenish(Pool *p);
/* Returns 1 and a ready sandbox in *ret_sb at once when one is ready; otherwise 0 and calls cb
 * later (the request can be cancelled until then). */
int pool_acquire(Pool *p, PoolAcquireFn cb, void *userdata, Sandbox **ret_sb, PoolRequest **ret_req);
void pool_request_cancel(PoolRequest *req);
/* Hands a used sandbox back: cleaned for reuse, or destroyed. */
void pool_release(Pool *p, Sandbox *sb);
/* Destroys every idle sandbox; returns how many. */
unsigned pool_flush(Pool *p);
unsigned pool_n_ready(Pool *p);
unsigned pool_n_total(Pool *p);
