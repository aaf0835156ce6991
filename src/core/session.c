/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/session.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"

struct SessionUse {
        Session *session;
        SessionRegistry *registry;
        Sandbox *orphan;             /* the sandbox of a session destroyed under this run */
        SessionReadyFn cb;
        void *userdata;
        SessionUse *next;
        bool running;
};

struct Session {
        SessionRegistry *registry;
        char *id;
        char tenant[TENANT_MAX + 1];
        RuntimeId runtime;
        char *image;                 /* the runtime image its sandbox has, or NULL */
        Pool *pool;                  /* where its sandboxes come from (the image's, or the registry's) */
        Limits limits;           /* fixed by the first run */
        char **secrets;              /* of every run so far (at most SECRETS_MAX), masked in GET /file */
        SecretMask *secret_mask;
        Sandbox *sb;
        PoolRequest *pool_req;
        bool sb_ready;
        uint64_t created_usec;       /* CLOCK_REALTIME */
        uint64_t last_access_usec;   /* CLOCK_REALTIME */
        uint64_t last_access_mono;
        unsigned executions;
        SessionUse *current;         /* the use whose run is under way */
        SessionUse *waiting_head, *waiting_tail;
        sd_event_source *defer;
        Session *next;
};

struct SessionRegistry {
        sd_event *event;
        SandboxProvider provider;
        Pool *pool;
        SessionLimits limits;
        Session *sessions;
        unsigned n;
        sd_event_source *sweep;
        SessionEventFn on_event;
        void *event_userdata;
};

void session_registry_set_event_handler(SessionRegistry *r, SessionEventFn fn, void *userdata) {
        r->on_event = fn;
        r->event_userdata = userdata;
}

void session_info(Session *s, SessionInfo *ret) {
        *ret = (SessionInfo) {
                .id = s->id,
                .tenant = s->tenant,
                .runtime = runtime_to_string(s->runtime),
                .active = s->current != NULL,
                .created_usec = s->created_usec,
                .last_access_usec = s->last_access_usec,
                .executions = s->executions,
        };
}

Session *session_first(SessionRegistry *r) {
        return r->sessions;
}

Session *session_next(Session *s) {
        return s->next;
}

bool session_id_valid(const char *id) {
        size_t n = id ? strlen(id) : 0;
        if (n == 0 || n > 128)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) id[i]) && !strchr("._:-", id[i]))
                        return false;
        return true;
}

static int on_sweep(sd_event_source *s, uint64_t usec, void *userdata) {
        SessionRegistry *r = userdata;
        unsigned n = session_prune(r);
        if (n > 0)
                log_info("sessions: pruned %u idle session(s)", n);
        (void) sd_event_source_set_time_relative(s, r->limits.sweep_interval_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

int session_registry_new(SessionRegistry **ret, sd_event *event, const SandboxProvider *provider, Pool *pool, const SessionLimits *limits) {
        SessionRegistry *r = calloc(1, sizeof(SessionRegistry));
        int k;
        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(event);
        r->provider = *provider;
        r->pool = pool;
        r->limits = *limits;
        if (limits->auto_prune) {
                k = sd_event_add_time_relative(event, &r->sweep, CLOCK_MONOTONIC, limits->sweep_interval_usec, 10000, on_sweep, r);
                (void) sd_event_source_set_description(r->sweep, "session-sweep");
                if (k < 0) {
                        session_registry_free(r);
                        return k;
                }
                (void) sd_event_source_set_enabled(r->sweep, SD_EVENT_ON);
        }
        *ret = r;
        return 0;
}

static void session_free(Session *s) {
        SessionUse *u;

        if (s->pool_req)
                pool_request_cancel(s->pool_req);
        /* Waiting runs learn that their session is gone. */
        while ((u = s->waiting_head)) {
                s->waiting_head = u->next;
                u->session = NULL;
                u->cb(NULL, -ENOENT, u->userdata);
                free(u);
        }
        sd_event_source_disable_unref(s->defer);
        if (s->current) {
                /* A run is under way in it: kill it now; the sandbox goes when the run is over. */
                s->current->session = NULL;
                s->current->orphan = TAKE_PTR(s->sb);
                (void) s->registry->provider.ops->kill(s->current->orphan);
        }
        s->registry->provider.ops->free_sandbox(s->sb);
        strv_free(s->secrets);
        secret_mask_free(s->secret_mask);
        free(s->image);
        free(s->id);
        free(s);
}

/* A run's secrets may end up in the session's files: remember them for GET /file (the newest
 * SECRETS_MAX of them). */
static int session_add_secrets(Session *s, char *const *secrets) {
        bool changed = false;

        for (char *const *v = secrets; v && *v; v++) {
                bool known = false;
                for (char **k = s->secrets; k && *k && !known; k++)
                        known = streq(*k, *v);
                if (known)
                        continue;
                if (strv_length(s->secrets) >= SECRETS_MAX) {
                        free(s->secrets[0]);
                        memmove(s->secrets, s->secrets + 1, strv_length(s->secrets) * sizeof(char *));
                }
                if (strv_push(&s->secrets, strdup(*v)) < 0)
                        return -ENOMEM;
                changed = true;
        }
        if (!changed)
                return 0;
        s->secret_mask = secret_mask_free(s->secret_mask);
        return secret_mask_new(s->secrets, &s->secret_mask);
}

const SecretMask *session_secret_mask(Session *s) {
        return s->secret_mask;
}

static void registry_unlink(SessionRegistry *r, Session *s) {
        for (Session **p = &r->sessions; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        r->n--;
                        return;
                }
}

SessionRegistry *session_registry_free(SessionRegistry *r) {
        if (!r)
                return NULL;
        session_destroy_all(r, "shutdown");
        sd_event_source_disable_unref(r->sweep);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}

Session *session_find(SessionRegistry *r, const char *tenant, const char *id) {
        for (Session *s = r->sessions; s; s = s->next)
                if (streq(s->id, id) && streq(s->tenant, tenant))
                        return s;
        return NULL;
}

/* Session ids are scoped by tenant: another tenant can neither see nor take an id. The master
 * key has its own namespace, and reaches another tenant's session by id when exactly one tenant
 * has that id. */
static Session *find(SessionRegistry *r, const AuthInfo *who, const char *id) {
        Session *s = session_find(r, who->tenant, id), *found = NULL;

        if (s || who->type != AUTH_MASTER)
                return s;
        for (s = r->sessions; s; s = s->next)
                if (streq(s->id, id)) {
                        if (found)
                                return NULL;   /* ambiguous */
                        found = s;
                }
        return found;
}

void session_touch(Session *s) {
        s->last_access_usec = now_usec(CLOCK_REALTIME);
        s->last_access_mono = now_usec(CLOCK_MONOTONIC);
}

Sandbox *session_sandbox(Session *s) {
        return s->sb_ready ? s->sb : NULL;
}

bool session_busy(Session *s) {
        return s->current != NULL;
}

static void on_session_sandbox(Sandbox *sb, SandboxEvent ev, int value, void *userdata);

/* Hands the session to the next waiting run if the sandbox is ready and nothing runs. */
static void dispatch(Session *s) {
        SessionUse *u;

        if (s->current || !s->sb_ready || !(u = s->waiting_head))
                return;
        s->waiting_head = u->next;
        if (!s->waiting_head)
                s->waiting_tail = NULL;
        u->next = NULL;
        u->running = true;
        s->current = u;
        s->executions++;
        session_touch(s);
        u->cb(s->sb, 0, u->userdata);
}

static int on_defer(sd_event_source *es, void *userdata) {
        Session *s = userdata;
        (void) sd_event_source_set_enabled(es, SD_EVENT_OFF);
        dispatch(s);
        return 0;
}

static void schedule(Session *s) {
        if (!s->defer) {
                if (sd_event_add_defer(s->registry->event, &s->defer, on_defer, s) < 0)
                        return;
                (void) sd_event_source_set_description(s->defer, "session-dispatch");
        }
        (void) sd_event_source_set_enabled(s->defer, SD_EVENT_ONESHOT);
}

static void fail_waiters(Session *s, int error) {
        SessionUse *u;
        while ((u = s->waiting_head)) {
                s->waiting_head = u->next;
                u->session = NULL;
                u->cb(NULL, error, u->userdata);
                free(u);
        }
        s->waiting_tail = NULL;
}

static void on_session_sandbox(Sandbox *sb, SandboxEvent ev, int value, void *userdata) {
        Session *s = userdata;

        if (ev == SANDBOX_READY) {
                if (value < 0) {
                        fail_waiters(s, value);
                        return;
                }
                s->sb_ready = true;
                dispatch(s);
        } else if (ev == SANDBOX_DIED && !s->current) {
                /* Gone while idle (killed from outside): the next run gets a fresh sandbox. */
                s->sb_ready = false;
        }
}

static void on_pool_sandbox(Sandbox *sb, int error, void *userdata) {
        Session *s = userdata;
        s->pool_req = NULL;
        if (error < 0) {
                fail_waiters(s, error);
                return;
        }
        s->sb = sb;
        pool_forget(s->pool, sb);
        s->registry->provider.ops->set_handler(sb, on_session_sandbox, s);
        s->sb_ready = true;
        dispatch(s);
}

static int provision(Session *s) {
        SessionRegistry *r = s->registry;
        Sandbox *sb = NULL;
        int k;

        s->sb = r->provider.ops->free_sandbox(s->sb);
        s->sb_ready = false;
        if (s->limits.network == NETWORK_HOST) {
                SandboxOptions o = { .share_network = true, .sandbox_bytes = s->limits.sandbox_bytes, .tmp_bytes = s->limits.tmp_bytes };
                return r->provider.ops->new_sandbox(r->provider.userdata, &o, on_session_sandbox, s, &s->sb);
        }
        /* A warm sandbox from the pool; it never goes back (sessions are never reused). */
        k = pool_acquire(s->pool, on_pool_sandbox, s, &sb, &s->pool_req);
        if (k < 0)
                return k;
        if (k > 0) {
                s->sb = sb;
                pool_forget(s->pool, sb);
                r->provider.ops->set_handler(sb, on_session_sandbox, s);
                s->sb_ready = true;
        }
        return 0;
}

bool session_registry_uses_image(SessionRegistry *r, const char *image) {
        for (Session *s = r->sessions; s; s = s->next)
                if (streq_ptr(s->image, image))
                        return true;
        return false;
}

int session_use(SessionRegistry *r, const AuthInfo *who, ExecRequest *req, SessionReadyFn cb, void *userdata,
                SessionUse **ret, char **ret_error) {
        return session_use_on(r, who, req, NULL, cb, userdata, ret, ret_error);
}

int session_use_on(SessionRegistry *r, const AuthInfo *who, ExecRequest *req, Pool *pool, SessionReadyFn cb,
                   void *userdata, SessionUse **ret, char **ret_error) {
        Session *s;
        SessionUse *u;
        int k;

        *ret_error = NULL;
        if (!session_id_valid(req->session_id)) {
                *ret_error = strdup("Invalid sessionId (1-128 characters of A-Z a-z 0-9 . _ : -)");
                return -EINVAL;
        }
        s = find(r, who, req->session_id);
        if (s && s->runtime != req->runtime) {
                if (asprintf(ret_error, "Cannot switch runtime from %s to %s in session %s", runtime_to_string(s->runtime),
                             runtime_to_string(req->runtime), s->id) < 0)
                        *ret_error = NULL;
                return -EXDEV;
        }
        if (s && req->image && !streq_ptr(s->image, req->image)) {
                if (asprintf(ret_error, "Cannot switch image from %s to %s in session %s", s->image ?: "none", req->image,
                             s->id) < 0)
                        *ret_error = NULL;
                return -EXDEV;
        }
        if (s && s->image && !req->image && !(req->image = strdup(s->image)))
                return -ENOMEM;
        if (!s) {
                unsigned per_tenant = 0;
                for (Session *i = r->sessions; i; i = i->next)
                        per_tenant += streq(i->tenant, who->tenant);
                if (r->n >= r->limits.max_total || per_tenant >= r->limits.max_per_tenant) {
                        if (asprintf(ret_error, "Too many sessions (limit: %u per tenant, %u in total)", r->limits.max_per_tenant,
                                     r->limits.max_total) < 0)
                                *ret_error = NULL;
                        return -EBUSY;
                }
                s = calloc(1, sizeof(Session));
                if (!s)
                        return -ENOMEM;
                s->registry = r;
                s->id = strdup(req->session_id);
                if (!s->id) {
                        free(s);
                        return -ENOMEM;
                }
                snprintf(s->tenant, sizeof(s->tenant), "%s", who->tenant);
                s->runtime = req->runtime;
                s->limits = req->limits;
                s->pool = pool ?: r->pool;
                if (req->image && !(s->image = strdup(req->image))) {
                        free(s->id);
                        free(s);
                        return -ENOMEM;
                }
                s->created_usec = now_usec(CLOCK_REALTIME);
                session_touch(s);
                s->next = r->sessions;
                r->sessions = s;
                r->n++;
                k = provision(s);
                if (k < 0) {
                        registry_unlink(r, s);
                        session_free(s);
                        return k;
                }
                log_debug("session %s created for tenant %s", s->id, s->tenant);
                if (r->on_event)
                        r->on_event(s->id, s->tenant, true, NULL, r->event_userdata);
        } else {
                /* Options are the session's; only the per-run timeout comes from the request. */
                uint64_t timeout = req->limits.timeout_ms;
                req->limits = s->limits;
                req->limits.timeout_ms = timeout;
                if (!s->sb || s->registry->provider.ops->is_dead(s->sb)) {
                        if (s->current == NULL && !s->pool_req) {
                                k = provision(s);
                                if (k < 0)
                                        return k;
                        }
                }
        }
        k = session_add_secrets(s, req->secrets);
        if (k < 0)
                return k;
        u = calloc(1, sizeof(SessionUse));
        if (!u)
                return -ENOMEM;
        u->session = s;
        u->registry = s->registry;
        u->cb = cb;
        u->userdata = userdata;
        if (s->waiting_tail)
                s->waiting_tail->next = u;
        else
                s->waiting_head = u;
        s->waiting_tail = u;
        *ret = u;
        schedule(s);
        return 0;
}

void session_use_done(SessionUse *u) {
        Session *s;

        if (!u)
                return;
        u->registry->provider.ops->free_sandbox(u->orphan);
        s = u->session;
        if (s) {
                if (s->current == u) {
                        s->current = NULL;
                        session_touch(s);
                        if (s->sb)
                                s->registry->provider.ops->set_handler(s->sb, on_session_sandbox, s);
                        if (s->sb && s->registry->provider.ops->is_dead(s->sb))
                                (void) provision(s);
                        schedule(s);
                } else {
                        /* Still waiting: leave the line. */
                        SessionUse *prev = NULL;
                        for (SessionUse *i = s->waiting_head; i; prev = i, i = i->next)
                                if (i == u) {
                                        if (prev)
                                                prev->next = u->next;
                                        else
                                                s->waiting_head = u->next;
                                        if (s->waiting_tail == u)
                                                s->waiting_tail = prev;
                                        break;
                                }
                }
        }
        free(u);
}

int session_lookup(SessionRegistry *r, const AuthInfo *who, const char *id, Session **ret) {
        Session *s = id ? find(r, who, id) : NULL;
        if (!s)
                return -ENOENT;
        *ret = s;
        return 0;
}

static void destroy(SessionRegistry *r, Session *s, const char *reason) {
        log_debug("session %s destroyed (%s)", s->id, reason);
        if (r->on_event)
                r->on_event(s->id, s->tenant, false, reason, r->event_userdata);
        registry_unlink(r, s);
        session_free(s);
}

int session_destroy(SessionRegistry *r, const AuthInfo *who, const char *id) {
        Session *s = find(r, who, id);
        if (!s)
                return 0;
        destroy(r, s, "deleted");
        return 1;
}

unsigned session_destroy_all(SessionRegistry *r, const char *reason) {
        unsigned n = 0;
        while (r->sessions) {
                destroy(r, r->sessions, reason);
                n++;
        }
        return n;
}

unsigned session_prune(SessionRegistry *r) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        unsigned n = 0;

        for (Session *s = r->sessions, *next; s; s = next) {
                next = s->next;
                if (s->current || s->waiting_head)
                        continue;   /* never prune what runs or is about to */
                if (now - s->last_access_mono > r->limits.max_idle_usec) {
                        destroy(r, s, "pruned");
                        n++;
                }
        }
        return n;
}

unsigned session_count(SessionRegistry *r) {
        return r->n;
}

