/* SPDX-License-Identifier: MIT */
/* The warm pool's state machine, driven with a fake sandbox provider. */
#include <errno.h>

#include "core/pool.h"
#include "shared/time-util.h"
#include "fake-provider.h"
#include "tap.h"

typedef struct Got {
        Sandbox *sb;
        int error;
        unsigned calls;
} Got;

static void on_acquired(Sandbox *sb, int error, void *userdata) {
        Got *g = userdata;
        g->sb = sb;
        g->error = error;
        g->calls++;
}

static void test_fill_and_take(sd_event *e) {
        Pool *p = NULL;
        PoolConfig pc = { .reuse = true, .clean = 2, .dirty = 1 };
        PoolRequest *req = NULL;
        Sandbox *sb = NULL;
        Got g = {};

        fake_init(e);
        CHECK(pool_new(&p, &fake.provider, &pc) == 0);
        pool_replenish(p);
        CHECK(fake.created == 2);                       /* the floor: clean sandboxes on their way */
        CHECK(pool_n_ready(p) == 0 && pool_n_total(p) == 2);
        /* Nothing ready yet: the request waits, and one more is built for it. */
        CHECK(pool_acquire(p, on_acquired, &g, &sb, &req) == 0 && req);
        CHECK(fake.created == 3);
        fake_event(fake_pending(), SANDBOX_READY, 0);
        CHECK(g.calls == 1 && g.sb && g.error == 0);    /* the first ready one goes to the waiter */
        Sandbox *mine = g.sb;
        /* The others become ready and stay warm. */
        while (fake_pending())
                fake_event(fake_pending(), SANDBOX_READY, 0);
        CHECK(pool_n_ready(p) == 2);
        /* A ready one is handed over at once (1), and the pool builds its replacement later. */
        sb = NULL;
        CHECK(pool_acquire(p, on_acquired, &g, &sb, &req) == 1 && sb);
        CHECK(pool_n_ready(p) == 1);
        run_loop(e);
        CHECK(fake.created == 4);
        /* fast strategy: a used sandbox is cleaned and comes back, the clean started once the
         * loop is idle (after the answer of its run went out), not on the way to it. */
        pool_release(p, mine);
        CHECK(mine->cleans == 0 && pool_n_total(p) == 3);
        run_loop(e);
        CHECK(mine->cleans == 1 && pool_n_total(p) == 3);
        fake_event(mine, SANDBOX_CLEANED, 0);
        CHECK(pool_n_ready(p) >= 2);
        /* A dead one is never reused. */
        sb->dead = true;
        pool_release(p, sb);
        CHECK(sb->cleans == 0);
        run_loop(e);
        CHECK(fake_n_live() == pool_n_total(p));        /* the dead one was destroyed */
        {
                unsigned ready = pool_n_ready(p);
                CHECK(ready > 0 && pool_flush(p) == ready && pool_n_ready(p) == 0);
        }
        pool_free(p);
        CHECK(fake_n_live() == 0);
}

static void test_secure_never_reuses(sd_event *e) {
        Pool *p = NULL;
        PoolConfig pc = { .reuse = false, .clean = 1, .dirty = 1 };
        PoolRequest *req = NULL;
        Sandbox *sb = NULL;
        Got g = {};

        fake_init(e);
        CHECK(pool_new(&p, &fake.provider, &pc) == 0);
        pool_replenish(p);
        fake_event(fake_pending(), SANDBOX_READY, 0);
        CHECK(pool_acquire(p, on_acquired, &g, &sb, &req) == 1 && sb);
        pool_release(p, sb);
        CHECK(sb->cleans == 0);   /* not cleaned: destroyed once the loop is idle */
        run_loop(e);
        CHECK(fake.freed == 1);
        pool_free(p);
        CHECK(fake_n_live() == 0);
}

static void test_failures(sd_event *e) {
        Pool *p = NULL;
        PoolConfig pc = { .reuse = true, .clean = 0, .dirty = 0 };
        PoolRequest *req = NULL;
        Sandbox *sb = NULL;
        Got g1 = {}, g2 = {};

        fake_init(e);
        CHECK(pool_new(&p, &fake.provider, &pc) == 0);
        /* A sandbox whose set-up fails fails its waiter instead of looping. */
        CHECK(pool_acquire(p, on_acquired, &g1, &sb, &req) == 0);
        CHECK(fake.created == 1);
        fake_event(fake_pending(), SANDBOX_READY, -EPERM);
        CHECK(g1.calls == 1 && g1.error == -EPERM && !g1.sb);
        /* The provider refusing to build one fails the waiter at once. */
        fake.fail_new = -ENOSPC;
        CHECK(pool_acquire(p, on_acquired, &g2, &sb, &req) == 0);
        CHECK(g2.calls == 1 && g2.error == -ENOSPC);
        fake.fail_new = 0;
        /* A cancelled request is never answered. */
        Got g3 = {};
        CHECK(pool_acquire(p, on_acquired, &g3, &sb, &req) == 0);
        pool_request_cancel(req);
        fake_event(fake_pending(), SANDBOX_READY, 0);
        CHECK(g3.calls == 0);
        CHECK(pool_n_ready(p) == 1);      /* kept warm for the next one instead */
        pool_free(p);
        CHECK(fake_n_live() == 0);
}

static void test_waiters_fail_on_free(sd_event *e) {
        Pool *p = NULL;
        PoolConfig pc = { .clean = 0 };
        PoolRequest *req = NULL;
        Sandbox *sb = NULL;
        Got g = {};

        fake_init(e);
        CHECK(pool_new(&p, &fake.provider, &pc) == 0);
        CHECK(pool_acquire(p, on_acquired, &g, &sb, &req) == 0);
        pool_free(p);
        CHECK(g.calls == 1 && g.error == -ESHUTDOWN);
        CHECK(fake_n_live() == 0);
}

static void loop_for(sd_event *e, uint64_t usec) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + usec;
        while (now_usec(CLOCK_MONOTONIC) < end)
                (void) sd_event_run(e, 10 * USEC_PER_MSEC);
}

/* The defaults (clean 1, dirty 1) under a burst of 8: the pool builds for all of them at once,
 * keeps what the demand used, and comes back to the floor when it is quiet. */
static void test_follows_demand(sd_event *e) {
        Pool *p = NULL;
        PoolConfig pc = { .reuse = true, .clean = 1, .dirty = 1, .max_warm = 12, .quiet_usec = 100 * USEC_PER_MSEC };
        PoolRequest *req = NULL;
        Sandbox *sb = NULL;
        Got g[8] = {};
        PoolStats st;

        fake_init(e);
        CHECK(pool_new(&p, &fake.provider, &pc) == 0);
        pool_replenish(p);
        CHECK(fake.created == 1);                       /* idle: the floor only */
        for (int i = 0; i < 8; i++)
                CHECK(pool_acquire(p, on_acquired, &g[i], &sb, &req) == 0);
        /* Built in parallel for every waiter at once, plus headroom: nobody waits in line for a
         * build that starts after the one before it. */
        CHECK(fake.created == 10);
        while (fake_pending())
                fake_event(fake_pending(), SANDBOX_READY, 0);
        for (int i = 0; i < 8; i++)
                CHECK(g[i].calls == 1 && g[i].sb);
        pool_stats(p, &st);
        CHECK(st.in_use == 8 && st.demand == 8 && st.ready == 2);
        /* Back after their runs: cleaned and kept (the demand was 8), not destroyed. */
        for (int i = 0; i < 8; i++)
                pool_release(p, g[i].sb);
        pool_stats(p, &st);
        CHECK(st.cleaning == 8 && st.in_use == 0);
        for (int i = 0; i < 8; i++)
                fake_event(g[i].sb, SANDBOX_CLEANED, 0);
        CHECK(pool_n_ready(p) == 10);
        run_loop(e);
        CHECK(fake.freed == 0);
        /* A second burst finds them warm: served at once. */
        for (int i = 0; i < 8; i++) {
                sb = NULL;
                CHECK(pool_acquire(p, on_acquired, &g[i], &sb, &req) == 1 && sb);
                pool_release(p, sb);
                fake_event(sb, SANDBOX_CLEANED, 0);
        }
        /* Quiet: back to the floor (clean + dirty), a half of the excess at a time. */
        loop_for(e, 90 * USEC_PER_MSEC);
        CHECK(pool_n_total(p) == 10);                     /* the period that saw the burst keeps it */
        loop_for(e, 250 * USEC_PER_MSEC);
        CHECK(pool_n_total(p) < 10);
        loop_for(e, 900 * USEC_PER_MSEC);
        CHECK(pool_n_total(p) == 2);
        pool_stats(p, &st);
        CHECK(st.demand == 0);
        pool_free(p);
        CHECK(fake_n_live() == 0);
}

/* Cleaning is used while it is the cheaper way to a warm sandbox. */
static void test_prefers_the_cheaper_way(sd_event *e) {
        Pool *p = NULL;
        PoolConfig pc = { .reuse = true, .clean = 1, .dirty = 1, .max_warm = 4 };
        PoolRequest *req = NULL;
        Sandbox *sb = NULL;
        PoolStats st;
        Got g = {};

        fake_init(e);
        CHECK(pool_new(&p, &fake.provider, &pc) == 0);
        pool_replenish(p);
        fake_event(fake_pending(), SANDBOX_READY, 0);     /* a build that took no time */
        CHECK(pool_acquire(p, on_acquired, &g, &sb, &req) == 1);
        pool_release(p, sb);
        run_loop(e);
        CHECK(sb->cleans == 1);
        loop_for(e, 30 * USEC_PER_MSEC);                   /* a clean that took 30 ms */
        fake_event(sb, SANDBOX_CLEANED, 0);
        pool_stats(p, &st);
        CHECK(st.clean_usec > st.build_usec && st.built == 1 && st.cleaned == 1);
        while (fake_pending())
                fake_event(fake_pending(), SANDBOX_READY, 0);
        sb = NULL;
        CHECK(pool_acquire(p, on_acquired, &g, &sb, &req) == 1 && sb);
        unsigned cleans = sb->cleans;
        pool_release(p, sb);
        CHECK(sb->cleans == cleans);                      /* destroyed: building is cheaper here */
        run_loop(e);
        /* ... but not for good: the costly clean's estimate fades, and cleaning is tried again. */
        {
                bool cleaned_again = false;
                for (int i = 0; i < 64 && !cleaned_again; i++) {
                        uint64_t destroyed;
                        while (fake_pending())
                                fake_event(fake_pending(), SANDBOX_READY, 1000);   /* 1 ms of CPU each */
                        run_loop(e);
                        sb = NULL;
                        if (pool_acquire(p, on_acquired, &g, &sb, &req) != 1 || !sb)
                                break;
                        pool_stats(p, &st);
                        destroyed = st.destroyed;
                        pool_release(p, sb);
                        run_loop(e);
                        pool_stats(p, &st);
                        cleaned_again = st.destroyed == destroyed;     /* kept: it is being cleaned */
                }
                CHECK(cleaned_again);
        }
        pool_free(p);
        CHECK(fake_n_live() == 0);
}

int main(void) {
        sd_event *e = NULL;

        CHECK(sd_event_new(&e) >= 0);
        test_fill_and_take(e);
        test_secure_never_reuses(e);
        test_failures(e);
        test_waiters_fail_on_free(e);
        test_follows_demand(e);
        test_prefers_the_cheaper_way(e);
        sd_event_unref(e);
        return tap_done();
}
