/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"

#define POOL_MAX 256
/* Warm sandboxes beyond the demand seen, so that the next client does not wait. */
#define POOL_HEADROOM 2
#define POOL_QUIET_DEFAULT_USEC (10 * USEC_PER_SEC)

struct PoolRequest {
        Pool *pool;
        PoolAcquireFn cb;
        void *userdata;
        PoolRequest *next;
};

typedef enum SlotState {
        SLOT_CREATING,
        SLOT_READY,
        SLOT_RETURNED,                /* used; its clean is sent once the loop is idle */
        SLOT_CLEANING,
} SlotState;

typedef struct PoolSlot {
        Sandbox *sb;
        SlotState state;
        uint64_t since;               /* CLOCK_MONOTONIC: when the build or the clean began */
} PoolSlot;

struct Pool {
        SandboxProvider provider;
        PoolConfig config;
        PoolSlot slots[POOL_MAX];
        unsigned n_slots;
        PoolRequest *waiters_head, *waiters_tail;
        unsigned n_waiters;
        unsigned in_use;              /* handed out, not yet back */
        /* Demand: sandboxes held or waited for at once. `demand` jumps up at once and comes
         * down to what the last quiet period saw. */
        unsigned demand;
        unsigned window_max;
        uint64_t quiet_usec;
        sd_event_source *quiet_timer;
        uint64_t build_usec, clean_usec;   /* moving averages of what each costs */
        uint64_t built, cleaned, destroyed;
        bool freeing;
        sd_event_source *replenish;   /* building sandboxes waits until the current run is on its way */
        Sandbox *doomed[POOL_MAX];    /* used sandboxes to destroy once the loop is idle */
        unsigned n_doomed;
};

static void pool_on_event(Sandbox *sb, SandboxEvent ev, int value, void *userdata);

static unsigned count_state(Pool *p, SlotState st) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_slots; i++)
                n += p->slots[i].state == st;
        return n;
}

/* Warm: ready, or on the way to it. */
static unsigned n_warm(Pool *p) {
        return p->n_slots;
}

static unsigned pool_cap(Pool *p) {
        return MAX(p->config.max_warm, p->config.clean + p->config.dirty);
}

/* How many warm sandboxes the demand asks for now (never below the floor, and one more in the
 * making for every run that waits). The headroom above the demand is at least the floor: while
 * the demand's runs hold sandboxes, `clean` more stay ready beside them, and a pool that kept
 * fewer between bursts would build one for every burst and destroy a used one after it. */
static unsigned want_warm(Pool *p) {
        unsigned total = p->demand > 0 ? MIN(p->demand + MAX(POOL_HEADROOM, p->config.clean), pool_cap(p)) : 0;
        unsigned w = total > p->in_use ? total - p->in_use : 0;
        return MAX(w, p->config.clean + p->n_waiters);
}

/* How many warm sandboxes may be kept (a used one cleaned, a ready one not destroyed). */
static unsigned keep_warm(Pool *p) {
        return MAX(MAX(want_warm(p), p->config.clean + p->config.dirty), 1u);
}

static void average(uint64_t *avg, uint64_t sample) {
        *avg = *avg ? (*avg * 7 + sample) / 8 : sample;
}

static int on_quiet_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void note_demand(Pool *p) {
        unsigned now = p->in_use + p->n_waiters;

        p->window_max = MAX(p->window_max, now);
        if (now > p->demand)
                p->demand = now;
        if (p->quiet_timer && p->demand > 0) {
                int enabled = SD_EVENT_OFF;
                (void) sd_event_source_get_enabled(p->quiet_timer, &enabled);
                if (enabled == SD_EVENT_OFF) {
                        (void) sd_event_source_set_time_relative(p->quiet_timer, p->quiet_usec);
                        (void) sd_event_source_set_enabled(p->quiet_timer, SD_EVENT_ON);
                }
        }
}

static void destroy_later(Pool *p, Sandbox *sb);
static void slot_remove(Pool *p, unsigned i);

/* The cleans of the sandboxes given back since the loop was last idle: after the answers of
 * their runs went out, so that the init's work does not delay them. */
static void start_cleans(Pool *p) {
        for (unsigned i = 0; i < p->n_slots;) {
                PoolSlot *slot = &p->slots[i];
                if (slot->state != SLOT_RETURNED) {
                        i++;
                        continue;
                }
                if (p->provider.ops->clean(slot->sb, p->config.sandbox_bytes, p->config.tmp_bytes) < 0) {
                        destroy_later(p, slot->sb);
                        slot_remove(p, i);
                        continue;
                }
                slot->state = SLOT_CLEANING;
                slot->since = now_usec(CLOCK_MONOTONIC);
                i++;
        }
}

static int on_replenish(sd_event_source *s, void *userdata) {
        Pool *p = userdata;
        start_cleans(p);
        while (p->n_doomed > 0) {
                p->provider.ops->free_sandbox(p->doomed[--p->n_doomed]);
                p->destroyed++;
        }
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
                p->destroyed++;
                return;
        }
        p->provider.ops->set_handler(sb, NULL, NULL);
        p->doomed[p->n_doomed++] = sb;
        replenish_later(p);
}

static int slot_index(Pool *p, Sandbox *sb) {
        for (unsigned i = 0; i < p->n_slots; i++)
                if (p->slots[i].sb == sb)
                        return (int) i;
        return -1;
}

static void slot_remove(Pool *p, unsigned i) {
        p->slots[i] = p->slots[--p->n_slots];
}

/* After a quiet period the pool comes back towards what the demand now asks for: the demand
 * is what the last period saw, and ready sandboxes beyond it go, half the excess at a time. */
static int on_quiet_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Pool *p = userdata;
        unsigned now = p->in_use + p->n_waiters, want, excess;

        p->demand = MAX(p->window_max, now);
        p->window_max = now;
        want = keep_warm(p);
        excess = n_warm(p) > want ? n_warm(p) - want : 0;
        for (unsigned i = 0, n = (excess + 1) / 2; n > 0 && i < p->n_slots;)
                if (p->slots[i].state == SLOT_READY) {
                        destroy_later(p, p->slots[i].sb);
                        slot_remove(p, i);
                        n--;
                } else
                        i++;
        if (p->demand == 0 && n_warm(p) <= want)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);   /* idle: wake nobody */
        return sd_event_source_set_time_relative(s, p->quiet_usec);
}

int pool_new(Pool **ret, const SandboxProvider *provider, const PoolConfig *config) {
        Pool *p = calloc(1, sizeof(Pool));
        uint64_t quiet;
        int r;

        if (!p)
                return -ENOMEM;
        p->provider = *provider;
        p->config = *config;
        quiet = p->quiet_usec = config->quiet_usec ?: POOL_QUIET_DEFAULT_USEC;
        r = sd_event_add_time_relative(p->provider.event, &p->quiet_timer, CLOCK_MONOTONIC, quiet, quiet / 10, on_quiet_timer, p);
        if (r < 0) {
                free(p);
                return r;
        }
        (void) sd_event_source_set_description(p->quiet_timer, "pool-quiet");
        (void) sd_event_source_set_enabled(p->quiet_timer, SD_EVENT_OFF);
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
        sd_event_source_disable_unref(p->quiet_timer);
        free(p);
        return NULL;
}

static int pool_spawn(Pool *p) {
        SandboxOptions o = { .sandbox_bytes = p->config.sandbox_bytes, .tmp_bytes = p->config.tmp_bytes,
                             .image_dir = p->config.image_dir, .image_target = p->config.image_target };
        Sandbox *sb;
        int r;

        if (p->n_slots >= POOL_MAX)
                return -EBUSY;
        r = p->provider.ops->new_sandbox(p->provider.userdata, &o, pool_on_event, p, &sb);
        if (r < 0)
                return r;
        p->slots[p->n_slots++] = (PoolSlot) { sb, SLOT_CREATING, now_usec(CLOCK_MONOTONIC) };
        return 0;
}

static void fail_waiters(Pool *p, int error, unsigned keep) {
        while (p->waiters_head && p->n_waiters > keep) {
                PoolRequest *w = p->waiters_head;
                p->waiters_head = w->next;
                if (!p->waiters_head)
                        p->waiters_tail = NULL;
                p->n_waiters--;
                w->cb(NULL, error, w->userdata);
                free(w);
        }
}

void pool_replenish(Pool *p) {
        unsigned want = want_warm(p), have = n_warm(p);

        if (p->freeing)
                return;
        /* Every missing one at once: they build in parallel, in their own processes. */
        while (have < want) {
                int r = pool_spawn(p);
                if (r < 0) {
                        log_warning_errno(r, "pool: cannot create a sandbox: %m");
                        /* Fail the waiters that nothing will serve. */
                        fail_waiters(p, r, have);
                        return;
                }
                have++;
        }
}

/* A sandbox became ready: give it to the first waiter, or keep it if the demand wants it. */
static void pool_offer(Pool *p, unsigned i) {
        PoolRequest *w = p->waiters_head;
        Sandbox *sb;

        if (!w) {
                if (n_warm(p) > keep_warm(p)) {
                        destroy_later(p, p->slots[i].sb);
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
        p->in_use++;
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
                        p->destroyed++;
                        slot_remove(p, (unsigned) i);
                        /* A failing setup would fail again: fail the waiters instead of looping. */
                        fail_waiters(p, value, count_state(p, SLOT_CREATING) + count_state(p, SLOT_RETURNED) +
                                     count_state(p, SLOT_CLEANING));
                        return;
                }
                /* The cost: the CPU time the init reports, else (a provider that does not say)
                 * how long it took. */
                uint64_t cost = value > 0 ? (uint64_t) value : now_usec(CLOCK_MONOTONIC) - p->slots[i].since;
                if (ev == SANDBOX_READY) {
                        average(&p->build_usec, cost);
                        p->built++;
                } else {
                        average(&p->clean_usec, cost);
                        p->cleaned++;
                }
                pool_offer(p, (unsigned) i);
                pool_replenish(p);
                return;
        case SANDBOX_DIED:
                p->provider.ops->free_sandbox(sb);
                p->destroyed++;
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
                        p->in_use++;
                        note_demand(p);
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
        note_demand(p);
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

void pool_forget(Pool *p, Sandbox *sb) {
        if (sb && p->in_use > 0)
                p->in_use--;
}

void pool_release(Pool *p, Sandbox *sb) {
        if (!sb)
                return;
        if (p->in_use > 0)
                p->in_use--;
        if (!p->config.reuse || p->provider.ops->is_dead(sb) || p->provider.ops->shares_network(sb) ||
            p->n_slots >= POOL_MAX || n_warm(p) >= keep_warm(p)) {
                destroy_later(p, sb);
                return;
        }
        /* Cleaning is the cheaper way to a warm sandbox, as long as it is measured so: a build
         * costs CPU in a process of its own, a clean a few syscalls in the init. A build also
         * takes longer (a new cgroup, a migration into it), so building wins only when a clean
         * costs clearly more CPU; and while it does the clean's estimate fades, so that cleaning
         * is tried and measured again: costly cleans (runs that left much behind) must not
         * decide for good. */
        if (p->build_usec > 0 && p->clean_usec > p->build_usec * 3 / 2) {
                p->clean_usec -= p->clean_usec / 4;
                destroy_later(p, sb);
                return;
        }
        p->provider.ops->set_handler(sb, pool_on_event, p);
        p->slots[p->n_slots++] = (PoolSlot) { sb, SLOT_RETURNED, now_usec(CLOCK_MONOTONIC) };
        replenish_later(p);
}

unsigned pool_flush(Pool *p) {
        unsigned n = 0;
        for (unsigned i = 0; i < p->n_slots;) {
                if (p->slots[i].state == SLOT_READY) {
                        p->provider.ops->free_sandbox(p->slots[i].sb);
                        p->destroyed++;
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

void pool_stats(Pool *p, PoolStats *ret) {
        *ret = (PoolStats) {
                .ready = count_state(p, SLOT_READY),
                .building = count_state(p, SLOT_CREATING),
                .cleaning = count_state(p, SLOT_RETURNED) + count_state(p, SLOT_CLEANING),
                .in_use = p->in_use,
                .waiting = p->n_waiters,
                .demand = p->demand,
                .target = want_warm(p),
                .build_usec = p->build_usec,
                .clean_usec = p->clean_usec,
                .built = p->built,
                .cleaned = p->cleaned,
                .destroyed = p->destroyed,
        };
}
