/* SPDX-License-Identifier: MIT */
/* The oldest run first: which sandbox cgroup gets which CPU weight, and when the lead passes on
 * (a fake cgroup v2 tree; the weight files are emptied before each step, so an empty file is
 * one the step did not write). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu-order.h"
#include "shared/time-util.h"
#include "shared/util.h"
#include "tap.h"

#define LEAD_USEC (300 * USEC_PER_MSEC)
#define YOUNG_USEC (100 * USEC_PER_MSEC)

static char root[256];
static const char *const names[] = { "sb-a", "sb-b", "sb-c", "sb-d" };

static void path_of(char *p, size_t size, const char *name) {
        snprintf(p, size, "%s/system.slice/isol8.service/isol8/d4242/%s/cpu.weight", root, name);
}

static void empty_all(void) {
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char p[512];
                path_of(p, sizeof(p), names[i]);
                int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd >= 0)
                        close(fd);
        }
}

/* What the last step wrote to a group's weight ("" when nothing). */
static bool weight_is(const char *name, const char *want) {
        char p[512], *s = NULL;
        bool ok;
        path_of(p, sizeof(p), name);
        if (read_full_file(p, &s, 64, NULL) < 0)
                return false;
        ok = strcmp(s, want) == 0;
        if (!ok)
                fprintf(stderr, "# %s: cpu.weight \"%s\", expected \"%s\"\n", name, s, want);
        free(s);
        return ok;
}

/* The starts of waiting runs, in the order they were called. */
static CpuOrderEntry *started[8];
static uint64_t started_at[8];
static size_t n_started;
static CpuOrder *order;

static void on_start(void *userdata) {
        CpuOrderEntry *e = userdata;
        if (n_started < ELEMENTSOF(started)) {
                started_at[n_started] = now_usec(CLOCK_MONOTONIC);
                started[n_started++] = e;
        }
}

/* A run that fails as it starts: it leaves the line from inside its own start. */
static void on_start_fail(void *userdata) {
        on_start(userdata);
        cpu_order_remove(order, userdata);
}

static void run_until(sd_event *e, uint64_t t) {
        for (uint64_t now; (now = now_usec(CLOCK_MONOTONIC)) < t;)
                (void) sd_event_run(e, t - now);
}

int main(void) {
        CgroupManager *m = NULL;
        Cgroup *cg[4] = {};
        CpuOrderEntry a = {}, b = {}, c = {}, d = {};
        CpuOrder *o = NULL;
        sd_event *e = NULL;
        char p[512];
        uint64_t t0;

        snprintf(root, sizeof(root), "/tmp/isol8-fake-cgroup-XXXXXX");
        CHECK(mkdtemp(root) != NULL);
        snprintf(p, sizeof(p), "%s/system.slice/isol8.service", root);
        CHECK(mkdir_p(p, 0755) == 0);
        snprintf(p, sizeof(p), "%s/system.slice/isol8.service/cgroup.controllers", root);
        {
                int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                CHECK(fd >= 0 && loop_write(fd, "cpu memory pids\n", 16) >= 0);
                safe_close(fd);
        }
        CHECK(cgroup_manager_new(&m, root, CGROUP_V2, "0::/system.slice/isol8.service\n", 4242, NULL) == 0);
        for (size_t i = 0; i < 4; i++)
                CHECK(cgroup_create(m, names[i], &cg[i]) == 0);
        CHECK(sd_event_new(&e) >= 0);
        CHECK(cpu_order_new(e, LEAD_USEC, 2, 0, 0, &o) == 0);
        t0 = now_usec(CLOCK_MONOTONIC);

        /* Two cores, two leaders: the first two runs lead, the third runs at the normal weight
         * behind them. */
        empty_all();
        CHECK(cpu_order_add(o, &a, cg[0], NULL, NULL) == 1);
        CHECK(weight_is("sb-a", "800") && cpu_order_leads(&a));
        empty_all();
        CHECK(cpu_order_add(o, &b, cg[1], NULL, NULL) == 1);
        CHECK(weight_is("sb-b", "800") && weight_is("sb-a", "") && cpu_order_leads(&a) && cpu_order_leads(&b));

        run_until(e, t0 + LEAD_USEC / 3);
        empty_all();
        CHECK(cpu_order_add(o, &c, cg[2], NULL, NULL) == 1);
        CHECK(weight_is("sb-c", "25") && weight_is("sb-a", "") && weight_is("sb-b", "") && !cpu_order_leads(&c));
        /* A leader ends: its sandbox gets the idle weight (its clean must not take CPU from a
         * run), the next oldest takes its place; nothing else is written. */
        empty_all();
        cpu_order_remove(o, &a);
        CHECK(weight_is("sb-a", "1") && weight_is("sb-c", "800") && weight_is("sb-b", "") && cpu_order_leads(&c) &&
              cpu_order_leads(&b) && !cpu_order_leads(&a));
        empty_all();
        cpu_order_remove(o, &a);   /* no longer listed: nothing happens */
        CHECK(weight_is("sb-a", "") && weight_is("sb-b", "") && weight_is("sb-c", ""));

        /* b has led for LEAD_USEC since it started: it goes back to the normal weight; c keeps
         * its lead, and there is nobody to take b's. */
        empty_all();
        run_until(e, t0 + LEAD_USEC + LEAD_USEC / 6);
        CHECK(weight_is("sb-b", "25") && weight_is("sb-c", "") && !cpu_order_leads(&b) && cpu_order_leads(&c));
        /* c's time is up too: nobody leads (a long run does not hold the others back). */
        empty_all();
        run_until(e, t0 + LEAD_USEC / 3 + LEAD_USEC + LEAD_USEC / 6);
        CHECK(weight_is("sb-c", "25") && !cpu_order_leads(&c));
        /* A new run behind two long ones leads at once. */
        empty_all();
        CHECK(cpu_order_add(o, &d, cg[3], NULL, NULL) == 1);
        CHECK(weight_is("sb-d", "800") && weight_is("sb-b", "") && weight_is("sb-c", "") && cpu_order_leads(&d));
        empty_all();
        cpu_order_remove(o, &c);
        cpu_order_remove(o, &b);
        CHECK(weight_is("sb-c", "1") && weight_is("sb-b", "1") && weight_is("sb-d", "") && cpu_order_leads(&d));
        cpu_order_remove(o, &d);
        CHECK(weight_is("sb-d", "1") && !cpu_order_leads(&d));

        /* Freed with a run still listed: the entry is forgotten, its cgroup left as it is. */
        CHECK(cpu_order_add(o, &a, cg[0], NULL, NULL) == 1);
        empty_all();
        cpu_order_free(o);
        CHECK(!a.listed && weight_is("sb-a", ""));

        /* One core: one leader; the second run waits behind it and leads when it ends. */
        CHECK(cpu_order_new(e, LEAD_USEC, 1, 0, 0, &o) == 0);
        empty_all();
        CHECK(cpu_order_add(o, &c, cg[2], NULL, NULL) == 1);
        CHECK(cpu_order_add(o, &d, cg[3], NULL, NULL) == 1);
        CHECK(weight_is("sb-c", "800") && weight_is("sb-d", "25") && cpu_order_leads(&c) && !cpu_order_leads(&d));
        empty_all();
        cpu_order_remove(o, &c);
        CHECK(weight_is("sb-c", "1") && weight_is("sb-d", "800") && cpu_order_leads(&d));
        cpu_order_remove(o, &d);
        cpu_order_free(o);

        /* Paced starts: two may be young (in their first YOUNG_USEC) at once. */
        CHECK(cpu_order_new(e, LEAD_USEC, 1, YOUNG_USEC, 2, &o) == 0);
        order = o;
        empty_all();
        t0 = now_usec(CLOCK_MONOTONIC);
        CHECK(cpu_order_add(o, &a, cg[0], on_start, &a) == 1);
        CHECK(cpu_order_add(o, &b, cg[1], on_start, &b) == 1);
        /* The third waits: not listed, its weight untouched, its start not called yet. */
        CHECK(cpu_order_add(o, &c, cg[2], on_start, &c) == 0);
        CHECK(c.waiting && !c.listed && weight_is("sb-c", "") && n_started == 0);
        /* So does the fourth, behind it even once a start is free (the order they came). */
        CHECK(cpu_order_add(o, &d, cg[3], on_start, &d) == 0);
        /* A young run ends: the first waiting one starts at once, and leads no one (a leads). */
        cpu_order_remove(o, &b);
        CHECK(n_started == 1 && started[0] == &c && c.listed && !c.waiting && weight_is("sb-c", "25"));
        /* d waits until a is no longer young, then starts from the timer. */
        run_until(e, t0 + YOUNG_USEC / 2);
        CHECK(n_started == 1 && d.waiting);
        run_until(e, t0 + YOUNG_USEC + YOUNG_USEC / 2);
        CHECK(n_started == 2 && started[1] == &d && d.listed && started_at[1] >= t0 + YOUNG_USEC);
        /* A run whose program has ended gives its start up at once, though it is still listed
         * (its answer is on the way) and keeps its weight. */
        cpu_order_remove(o, &a);
        CHECK(cpu_order_add(o, &a, cg[0], on_start, &a) == 1);   /* young now: d and a */
        CHECK(cpu_order_add(o, &b, cg[1], on_start, &b) == 0);
        empty_all();
        cpu_order_program_ended(o, &d);
        CHECK(n_started == 3 && started[2] == &b && b.listed && d.listed && d.ended && weight_is("sb-d", ""));
        cpu_order_program_ended(o, &d);   /* again: nothing more */
        CHECK(n_started == 3);
        cpu_order_remove(o, &b);
        /* A waiting run that goes away is never started. */
        cpu_order_remove(o, &a);
        cpu_order_remove(o, &c);
        cpu_order_remove(o, &d);
        CHECK(cpu_order_add(o, &a, cg[0], on_start, &a) == 1);
        CHECK(cpu_order_add(o, &b, cg[1], on_start, &b) == 1);
        CHECK(cpu_order_add(o, &c, cg[2], on_start_fail, &c) == 0);
        CHECK(cpu_order_add(o, &d, cg[3], on_start, &d) == 0);
        cpu_order_remove(o, &d);
        CHECK(!d.waiting && !d.listed);
        /* One that fails in its start leaves the line, and the next waiting one starts. */
        CHECK(cpu_order_add(o, &d, cg[3], on_start, &d) == 0);
        n_started = 0;
        cpu_order_remove(o, &a);
        CHECK(n_started == 2 && started[0] == &c && started[1] == &d && !c.listed && d.listed);
        run_until(e, now_usec(CLOCK_MONOTONIC) + YOUNG_USEC * 2);
        CHECK(n_started == 2);
        /* Freed with a run waiting: forgotten, never started. */
        cpu_order_remove(o, &b);
        cpu_order_remove(o, &d);
        CHECK(cpu_order_add(o, &a, cg[0], on_start, &a) == 1);
        CHECK(cpu_order_add(o, &b, cg[1], on_start, &b) == 1);
        CHECK(cpu_order_add(o, &c, cg[2], on_start, &c) == 0);
        cpu_order_free(o);
        CHECK(!c.waiting && !c.listed && n_started == 2);

        for (size_t i = 0; i < 4; i++)
                cgroup_destroy(cg[i]);
        cgroup_manager_free(m);
        sd_event_unref(e);
        {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
                (void) system(cmd);
        }
        return tap_done();
}
