/* SPDX-License-Identifier: MIT */
/* Sessions' state machine (one run at a time, tenants, runtime, limits, a sandbox that dies),
 * driven with a fake sandbox provider. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/session.h"
#include "fake-provider.h"
#include "tap.h"

typedef struct Use {
        Sandbox *sb;
        int error;
        unsigned calls;
        SessionUse *u;
} Use;

static void on_ready(Sandbox *sb, int error, void *userdata) {
        Use *u = userdata;
        u->sb = sb;
        u->error = error;
        u->calls++;
}

static ExecRequest *request(const char *id, RuntimeId rt) {
        ExecRequest *req = calloc(1, sizeof(ExecRequest));
        req->session_id = strdup(id);
        req->runtime = rt;
        req->limits.timeout_ms = 1000;
        return req;
}

static int use(SessionRegistry *r, const AuthInfo *who, const char *id, RuntimeId rt, Use *u, char **err) {
        ExecRequest *req = request(id, rt);
        int k;
        *err = NULL;
        k = session_use(r, who, req, on_ready, u, &u->u, err);
        exec_request_free(req);
        return k;
}

int main(void) {
        AuthInfo alice = { .type = AUTH_APIKEY, .tenant = "alice" }, bob = { .type = AUTH_APIKEY, .tenant = "bob" };
        SessionLimits sl = { .max_total = 3, .max_per_tenant = 2, .max_idle_usec = UINT64_MAX / 2, .sweep_interval_usec = 1000000 };
        PoolConfig pc = { .reuse = false, .clean = 0 };
        SessionRegistry *reg = NULL;
        Session *s = NULL;
        Pool *pool = NULL;
        sd_event *e = NULL;
        Use u1 = {}, u2 = {}, u3 = {}, u4 = {}, b1 = {};
        char *err = NULL;

        CHECK(sd_event_new(&e) >= 0);
        fake_init(e);
        CHECK(pool_new(&pool, &fake.provider, &pc) == 0);
        CHECK(session_registry_new(&reg, e, &fake.provider, pool, &sl) == 0);

        /* The first use makes the session; it runs once its sandbox is ready. */
        CHECK(use(reg, &alice, "s1", RUNTIME_PYTHON, &u1, &err) == 0);
        CHECK(session_count(reg) == 1 && fake.created == 1);
        run_loop(e);
        CHECK(u1.calls == 0);
        fake_event(fake_pending(), SANDBOX_READY, 0);
        run_loop(e);
        CHECK(u1.calls == 1 && u1.sb && u1.error == 0);
        /* One run at a time: the second waits until the first is done. */
        CHECK(use(reg, &alice, "s1", RUNTIME_PYTHON, &u2, &err) == 0);
        run_loop(e);
        CHECK(u2.calls == 0);
        session_use_done(u1.u);
        run_loop(e);
        CHECK(u2.calls == 1 && u2.sb == u1.sb);        /* the same sandbox: files stay */
        session_use_done(u2.u);
        /* A session keeps its first runtime. */
        CHECK(use(reg, &alice, "s1", RUNTIME_NODE, &u3, &err) == -EXDEV && err && strstr(err, "Cannot switch runtime"));
        free(err);
        /* Ids are per tenant: bob's "s1" is another session, and bob cannot see alice's. */
        CHECK(session_lookup(reg, &bob, "s1", &s) == -ENOENT);
        CHECK(session_lookup(reg, &alice, "s1", &s) == 0 && s);
        CHECK(use(reg, &bob, "s1", RUNTIME_NODE, &b1, &err) == 0);
        CHECK(session_count(reg) == 2);
        /* Limits: two per tenant, three in all. */
        CHECK(use(reg, &alice, "s2", RUNTIME_PYTHON, &u3, &err) == 0);
        free(err);
        CHECK(use(reg, &alice, "s3", RUNTIME_PYTHON, &u4, &err) == -EBUSY && err && strstr(err, "Too many sessions"));
        free(err);
        /* Invalid ids are refused before anything is made. */
        CHECK(use(reg, &alice, "a/b", RUNTIME_PYTHON, &u4, &err) == -EINVAL);
        free(err);
        CHECK(!session_id_valid("") && session_id_valid("run-1.a_b:c"));

        /* The pool serves its waiters in order: bob's s1, then alice's s2. */
        fake_event(fake_pending(), SANDBOX_READY, 0);
        fake_event(fake_pending(), SANDBOX_READY, 0);
        run_loop(e);
        CHECK(b1.calls == 1 && b1.sb && u3.calls == 1 && u3.sb && b1.sb != u3.sb);
        session_use_done(b1.u);
        session_use_done(u3.u);

        /* A sandbox killed from outside while idle: the next run gets a fresh one. */
        Sandbox *old = u1.sb;
        fake_event(old, SANDBOX_DIED, 0);
        Use u5 = {};
        unsigned before = fake.created;
        CHECK(use(reg, &alice, "s1", RUNTIME_PYTHON, &u5, &err) == 0);
        CHECK(fake.created == before + 1);
        fake_event(fake_pending(), SANDBOX_READY, 0);
        run_loop(e);
        CHECK(u5.calls == 1 && u5.sb && u5.sb != old);

        /* Destroying a session with a waiting run tells it the session is gone. */
        Use u6 = {};
        CHECK(use(reg, &alice, "s1", RUNTIME_PYTHON, &u6, &err) == 0);
        CHECK(session_destroy(reg, &bob, "s1") == 1);      /* bob's own s1 */
        CHECK(session_destroy(reg, &alice, "s1") == 1);
        CHECK(u6.calls == 1 && u6.error == -ENOENT);
        CHECK(u5.sb && u5.sb->kills == 1);                          /* the run under way is killed */
        session_use_done(u5.u);                            /* ... and its sandbox goes with it */
        CHECK(session_destroy(reg, &alice, "s1") == 0);
        CHECK(session_destroy_all(reg, "test") == 1);      /* alice's s2 */
        CHECK(session_count(reg) == 0);
        session_registry_free(reg);
        pool_free(pool);
        run_loop(e);
        CHECK(fake_n_live() == 0);
        sd_event_unref(e);
        return tap_done();
}
