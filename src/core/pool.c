/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "shared/log.h"
#include "shared/util.h"

#define POOL_MAX 256

struct PoolRequest {
        Pool *pool;
        PoolAcquireFn cb;
        void *userdata;
        PoolRequest *next;
};

typedef enum SlotState {
        SLOT_CREATING,
        SLOT_READY,
        SLOT_CLEANING,
} SlotState;

typedef struct PoolSlot {
        Sandbox *sb;
        SlotState state;
} PoolSlot;

struct Pool {
        SandboxProvider provider;
        PoolConfig config;
        PoolSlot slots[POOL_MAX];
        unsigned n_slots;
        PoolRequest *waiters_head, *waiters_tail;
        unsigned n_waiters;
        bool freeing;
        sd_event_source *replenish;   /* building sandboxes waits until the current run is on its way */
        Sandbox *doomed[POOL_MAX];    /* used sandboxes to destroy once the loop is idle */
        unsigned n_doomed;
};

static int on_replenish(sd_event_source *s, void *userdata) {
        Pool *p = userdata;
        while (p->n_doomed > 0)
                p->provider.ops->free_sandbox(p->doomed[--p->n_doomed]);
        pool_replenish(p);
        return 0;
}

static void replenish_later(Pool *p) {
        if (!p->replenish) {
                if (sd_event_add_defer(p->provider.event, &p->replenish, on_replenish, p) < 0) {
                        pool_replenish(p);
                        return;
                }
                (void) sd_event_source_set_description(p->replenish, "pool-replenish");
                /* After the answers of this loop iteration went out. */
                (void) sd_event_source_set_priority(p->replenish, SD_EVENT_PRIORITY_IDLE);
        }
        (void) sd_event_source_set_enabled(p->replenish, SD_EVENT_ONESHOT);
}

/* Destroying a sandbox waits for its init and its cgroup: never on the path of an answer. */
static void destroy_later(Pool *p, Sandbox *sb) {
        if (p->n_doomed >= POOL_MAX) {
                p->provider.ops->free_sandbox(sb);
                return;
        }
        p->provider.ops->set_handler(sb, NULL, NULL);
        p->doomed[p->n_doomed++] = sb;
        replenish_later(p);
}

static void pool_on_event(Sandbox *sb, SandboxEvent ev, int value, void *userdata);

static int slot_index(Pool *p, Sandbox *sb) {
        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i].sb == sb)
                        return (int) i;
        return -1;
}

static void slot_remove(Pool *p, unsigned i) {
        p->slots[i] = p->slots[--p->n_slots];
}

static unsigned count_state(Pool *p, SlotState st) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_slots; i++)
                n += p->slots[i].state == st;
        return n;
}

int pool_new(Pool **ret, const SandboxProvider *provider, const PoolConfig *config) {
        Pool *p = calloc(1, sizeof(Pool));
        if (!p)
                return -ENOMEM;
        p->provider = *provider;
        p->config = *config;
        *ret = p;
        return 0;
}

Pool *pool_free(Pool *p) {
        if (!p)
                return NULL;
        p->freeing = true;
        while (p->waiters_head) {
                PoolRequest *r = p->waiters_head;
                p->waiters_head = r->next;
                r->cb(NULL, -ESHUTDOWN, r->userdata);
                free(r);
        }
        for (unsigned i = 0; i < p->n_slots; i++)
                p->provider.ops->free_sandbox(p->slots[i].sb);
        while (p->n_doomed > 0)
                p->provider.ops->free_sandbox(p->doomed[--p->n_doomed]);
        sd_event_source_disable_unref(p->replenish);
        free(p);
        return NULL;
}

static int pool_spawn(Pool *p) {
        SandboxOptions o = { .sandbox_bytes = p->config.sandbox_bytes, .tmp_bytes = p->config.tmp_bytes };
        Sandbox *sb;
        int r;

        if (p->n_slots >= POOL_MAX)
                return -EBUSY;
        r = p->provider.ops->new_sandbox(p->provider.userdata, &o, pool_on_event, p, &sb);
        if (r < 0)
                return r;
        p->slots[p->n_slots++] = (PoolSlot) { sb, SLOT_CREATING };
        return 0;
}

void pool_replenish(Pool *p) {
        /* Keep `clean` sandboxes ready or on their way, plus one in the making per waiter. */
        unsigned want = p->config.clean + p->n_waiters;
        unsigned have = count_state(p, SLOT_READY) + count_state(p, SLOT_CREATING) + count_state(p, SLOT_CLEANING);

        if (p->freeing)
                return;
        while (have < want) {
                int r = pool_spawn(p);
                if (r < 0) {
                        log_warning_errno(r, "pool: cannot create a sandbox: %m");
                        /* Fail the waiters that nothing will serve. */
                        while (p->waiters_head && have < p->n_waiters) {
                                PoolRequest *w = p->waiters_head;
                                p->waiters_head = w->next;
                                if (!p->waiters_head)
                                        p->waiters_tail = NULL;
                                p->n_waiters--;
                                w->cb(NULL, r, w->userdata);
                                free(w);
                        }
                        return;
                }
                have++;
        }
}

/* A sandbox became ready: give it to the first waiter, or keep it. */
static void pool_offer(Pool *p, unsigned i) {
        PoolRequest *w = p->waiters_head;
        Sandbox *sb;

        if (!w) {
                unsigned cap = p->config.clean + p->config.dirty;
                if (count_state(p, SLOT_READY) >= MAX(cap, 1u)) {
                        p->provider.ops->free_sandbox(p->slots[i].sb);
                        slot_remove(p, i);
                        return;
                }
                p->slots[i].state = SLOT_READY;
                return;
        }
        p->waiters_head = w->next;
        if (!p->waiters_head)
                p->waiters_tail = NULL;
        p->n_waiters--;
        sb = p->slots[i].sb;
        slot_remove(p, i);
        p->provider.ops->set_handler(sb, NULL, NULL);
        w->cb(sb, 0, w->userdata);
        free(w);
}

static void pool_on_event(Sandbox *sb, SandboxEvent ev, int value, void *userdata) {
        Pool *p = userdata;
        int i = slot_index(p, sb);

        if (i < 0)
                return;
        switch (ev) {
        case SANDBOX_READY:
        case SANDBOX_CLEANED:
                if (value < 0) {
                        p->provider.ops->free_sandbox(sb);
                        slot_remove(p, (unsigned) i);
                        /* A failing setup would fail again: fail the waiters instead of looping. */
                        while (p->waiters_head && count_state(p, SLOT_CREATING) + count_state(p, SLOT_CLEANING) < p->n_waiters) {
                                PoolRequest *w = p->waiters_head;
                                p->waiters_head = w->next;
                                if (!p->waiters_head)
                                        p->waiters_tail = NULL;
                                p->n_waiters--;
                                w->cb(NULL, value, w->userdata);
                                free(w);
                        }
                        return;
                }
                pool_offer(p, (unsigned) i);
                pool_replenish(p);
                return;
        case SANDBOX_DIED:
                p->provider.ops->free_sandbox(sb);
                slot_remove(p, (unsigned) i);
                pool_replenish(p);
                return;
        default:
                return;
        }
}

int pool_acquire(Pool *p, PoolAcquireFn cb, void *userdata, Sandbox **ret_sb, PoolRequest **ret_req) {
        PoolRequest *w;

        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i].state == SLOT_READY && p->provider.ops->is_ready(p->slots[i].sb)) {
                        Sandbox *sb = p->slots[i].sb;
                        slot_remove(p, i);
                        p->provider.ops->set_handler(sb, NULL, NULL);
                        replenish_later(p);
                        *ret_sb = sb;
                        return 1;
                }
        w = calloc(1, sizeof(PoolRequest));
        if (!w)
                return -ENOMEM;
        w->pool = p;
        w->cb = cb;
        w->userdata = userdata;
        if (p->waiters_tail)
                p->waiters_tail->next = w;
        else
                p->waiters_head = w;
        p->waiters_tail = w;
        p->n_waiters++;
        pool_replenish(p);
        *ret_req = w;
        return 0;
}

void pool_request_cancel(PoolRequest *req) {
        Pool *p = req->pool;
        PoolRequest **pp = &p->waiters_head, *prev = NULL;

        for (; *pp; prev = *pp, pp = &(*pp)->next)
                if (*pp == req) {
                        *pp = req->next;
                        if (p->waiters_tail == req)
                                p->waiters_tail = prev;
                        p->n_waiters--;
                        free(req);
                        return;
                }
}

void pool_release(Pool *p, Sandbox *sb) {
        if (!sb)
                return;
        if (!p->config.reuse || p->provider.ops->is_dead(sb) || count_state(p, SLOT_CLEANING) >= MAX(p->config.dirty, 1u) ||
            p->n_slots >= POOL_MAX || p->provider.ops->shares_network(sb)) {
                destroy_later(p, sb);
                return;
        }
        p->provider.ops->set_handler(sb, pool_on_event, p);
        if (p->provider.ops->clean(sb, p->config.sandbox_bytes, p->config.tmp_bytes) < 0) {
                destroy_later(p, sb);
                return;
        }
        p->slots[p->n_slots++] = (PoolSlot) { sb, SLOT_CLEANING };
}

unsigned pool_flush(Pool *p) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_slots;) {
                if (p->slots[i].state == SLOT_READY) {
                        p->provider.ops->free_sandbox(p->slots[i].sb);
                        slot_remove(p, i);
                        n++;
                } else
                        i++;
        }
        return n;
}

unsigned pool_n_ready(Pool *p) {
        return count_state(p, SLOT_READY);
}

unsigned pool_n_total(Pool *p) {
        return p->n_slots;
}
