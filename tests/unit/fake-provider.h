/* SPDX-License-Identifier: MIT */
/* A fake sandbox provider for the pool's and the sessions' unit tests: sandboxes are plain
 * structs whose events the test sends (fake_event()), so the state machines run without
 * namespaces, cgroups or root. */
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/provider.h"
#include "sandbox/fsio.h"

struct Sandbox {
        SandboxHandler handler;
        void *userdata;
        bool ready;
        bool dead;
        bool share_network;
        unsigned cleans;
        unsigned kills;
        struct Sandbox *next_live;
};

typedef struct FakeProvider {
        SandboxProvider provider;
        unsigned created;
        unsigned freed;
        int fail_new;               /* < 0: new_sandbox fails with it */
        struct Sandbox *live;       /* created, not freed */
        const char *root_dir;       /* what open_root() opens */
        int root_error;             /* < 0: open_root() fails with it */
        int write_result;           /* < 0: write() answers it instead of writing (as the init would) */
        uint64_t memory_available;  /* what memory_fits() allows (fake_init: everything) */
} FakeProvider;

static FakeProvider fake;

static int fake_new(void *userdata, const SandboxOptions *opts, SandboxHandler h, void *hud, Sandbox **ret) {
        FakeProvider *f = userdata;
        Sandbox *sb;

        if (f->fail_new < 0)
                return f->fail_new;
        sb = calloc(1, sizeof(Sandbox));
        if (!sb)
                return -ENOMEM;
        sb->handler = h;
        sb->userdata = hud;
        sb->share_network = opts->share_network;
        sb->next_live = f->live;
        f->live = sb;
        f->created++;
        *ret = sb;
        return 0;
}

static Sandbox *fake_free(Sandbox *sb) {
        if (!sb)
                return NULL;
        for (Sandbox **p = &fake.live; *p; p = &(*p)->next_live)
                if (*p == sb) {
                        *p = sb->next_live;
                        break;
                }
        fake.freed++;
        free(sb);
        return NULL;
}

static void fake_set_handler(Sandbox *sb, SandboxHandler h, void *ud) {
        sb->handler = h;
        sb->userdata = ud;
}

static bool fake_is_ready(Sandbox *sb) {
        return sb->ready;
}

static bool fake_is_dead(Sandbox *sb) {
        return sb->dead;
}

static bool fake_shares_network(Sandbox *sb) {
        return sb->share_network;
}

static int fake_clean(Sandbox *sb, uint64_t a, uint64_t b) {
        sb->ready = false;
        sb->cleans++;
        return 0;
}

static int fake_kill(Sandbox *sb) {
        sb->kills++;
        return 0;
}

static int fake_open_root(Sandbox *sb) {
        int fd;
        if (fake.root_error < 0)
                return fake.root_error;
        fd = open(fake.root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static uid_t fake_host_uid(Sandbox *sb) {
        return getuid();
}

typedef struct FakeWrite {
        SandboxWriteFn cb;
        void *userdata;
        int result;
        sd_event_source *source;
} FakeWrite;

static int fake_write_answer(sd_event_source *s, void *userdata) {
        FakeWrite *w = userdata;
        sd_event_source_disable_unref(w->source);
        w->cb(w->result, w->userdata);
        free(w);
        return 0;
}

/* Written in-process with the file layer's rules; answered from the loop, as the init does. */
static int fake_write(Sandbox *sb, const SandboxWrite *writes, size_t n, SandboxWriteFn cb, void *userdata) {
        FakeWrite *w = calloc(1, sizeof(FakeWrite));
        int r = fake.write_result;

        if (!w)
                return -ENOMEM;
        if (r >= 0) {
                int root = open(fake.root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = writes[i].dir ? sandbox_mkdir_p(root, writes[i].path, getuid(), getgid())
                                          : sandbox_write_file(root, writes[i].path, writes[i].data, writes[i].size,
                                                               getuid(), getgid(), 0644);
                close(root);
        }
        *w = (FakeWrite) { cb, userdata, r, NULL };
        if (sd_event_add_defer(fake.provider.event, &w->source, fake_write_answer, w) < 0) {
                free(w);
                return -ENOMEM;
        }
        return 0;
}

static bool fake_memory_fits(Sandbox *sb, uint64_t bytes) {
        return bytes <= fake.memory_available;
}

static const SandboxProviderOps fake_ops = {
        .new_sandbox = fake_new,
        .free_sandbox = fake_free,
        .set_handler = fake_set_handler,
        .is_ready = fake_is_ready,
        .is_dead = fake_is_dead,
        .shares_network = fake_shares_network,
        .clean = fake_clean,
        .kill = fake_kill,
        .open_root = fake_open_root,
        .host_uid = fake_host_uid,
        .write = fake_write,
        .memory_fits = fake_memory_fits,
};

static inline void fake_init(sd_event *e) {
        fake = (FakeProvider) { .provider = { .ops = &fake_ops, .userdata = &fake, .event = e }, .memory_available = UINT64_MAX };
}

/* The engine's side: a sandbox got set up (READY), cleaned, or died. */
static inline void fake_event(Sandbox *sb, SandboxEvent ev, int value) {
        if ((ev == SANDBOX_READY || ev == SANDBOX_CLEANED) && value >= 0)
                sb->ready = true;
        if (ev == SANDBOX_DIED)
                sb->dead = true;
        if (sb->handler)
                sb->handler(sb, ev, value, sb->userdata);
}

static inline unsigned fake_n_live(void) {
        unsigned n = 0;
        for (Sandbox *sb = fake.live; sb; sb = sb->next_live)
                n++;
        return n;
}

/* The newest live sandbox that has not become ready yet, or NULL. */
static inline Sandbox *fake_pending(void) {
        Sandbox *found = NULL;
        for (Sandbox *sb = fake.live; sb; sb = sb->next_live)
                if (!sb->ready && !sb->dead && sb->cleans == 0 && !found)
                        found = sb;
        return found;
}

/* Runs the loop's pending work (defer sources) without waiting. */
static inline void run_loop(sd_event *e) {
        for (int i = 0; i < 16; i++)
                if (sd_event_run(e, 0) <= 0)
                        break;
}
