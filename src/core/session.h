/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "auth/auth.h"
#include "core/pool.h"
#include "core/provider.h"
#include "sandbox/sandbox.h"
#include "core/request.h"
#include "shared/macro.h"

/* Persistent sessions: a sandbox kept between runs under a client-chosen id, bound to the
 * runtime of its first run and to the tenant that created it. Runs in one session are
 * serialised; idle sessions are pruned. */

typedef struct SessionRegistry SessionRegistry;
typedef struct Session Session;
typedef struct SessionUse SessionUse;

typedef struct SessionLimits {
        unsigned max_total;
        unsigned max_per_tenant;
        bool auto_prune;
        uint64_t max_idle_usec;
        uint64_t sweep_interval_usec;
} SessionLimits;

int session_registry_new(SessionRegistry **ret, sd_event *event, const SandboxProvider *provider, Pool *pool,
                         const SessionLimits *limits);
/* Told of every session created (reason NULL) and destroyed (reason: deleted, pruned,
 * cleanup, shutdown): for the audit trail and the bus signals. */
typedef void (*SessionEventFn)(const char *id, const char *tenant, bool created, const char *reason, void *userdata);
void session_registry_set_event_handler(SessionRegistry *r, SessionEventFn fn, void *userdata);
SessionRegistry *session_registry_free(SessionRegistry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(SessionRegistry *, session_registry_free);

/* Valid ids: 1-128 characters of [A-Za-z0-9._:-]. */
bool session_id_valid(const char *id);

/* Called when the session is free and its sandbox ready (sb), or failed (error < 0). */
typedef void (*SessionReadyFn)(Sandbox *sb, int error, void *userdata);

/* Takes a turn in the session req->session_id (creating it on first use). req's limits are
 * replaced by the session's for an existing session. Returns 0 and calls cb later, or:
 * -ENOENT another tenant's session, -EXDEV runtime switch (message in *ret_error), -EBUSY a
 * session limit is reached (message), -EINVAL bad id. */
int session_use(SessionRegistry *r, const AuthInfo *who, ExecRequest *req, SessionReadyFn cb, void *userdata,
                SessionUse **ret, char **ret_error);
/* The same for a run on a runtime image (req->image): a new session takes its sandbox from pool
 * (the image's) and keeps the image; a later run names the same image or none (it gets the
 * session's in req->image), another is -EXDEV with a message. */
int session_use_on(SessionRegistry *r, const AuthInfo *who, ExecRequest *req, Pool *pool, SessionReadyFn cb,
                   void *userdata, SessionUse **ret, char **ret_error);
/* Whether a session keeps a sandbox of that image (which must then stay). */
bool session_registry_uses_image(SessionRegistry *r, const char *image);
/* The run is over (or never started): the next run of the session may go. */
void session_use_done(SessionUse *u);

/* Finds a session the caller may see; -ENOENT otherwise. */
int session_lookup(SessionRegistry *r, const AuthInfo *who, const char *id, Session **ret);
/* Exactly the session id of tenant (no master rules). */
Session *session_find(SessionRegistry *r, const char *tenant, const char *id);
/* The secrets of the session's runs so far, to mask in files read out of it (NULL: none). */
const SecretMask *session_secret_mask(Session *s);
/* Marks a file access. */
void session_touch(Session *s);
Sandbox *session_sandbox(Session *s);
bool session_busy(Session *s);

/* Destroys a session (killing what runs in it). Returns 1 if it existed for the caller. */
int session_destroy(SessionRegistry *r, const AuthInfo *who, const char *id);
unsigned session_destroy_all(SessionRegistry *r, const char *reason);
/* Prunes sessions idle longer than the limit; returns how many. */
unsigned session_prune(SessionRegistry *r);
unsigned session_count(SessionRegistry *r);

/* Read access for the bus. */
typedef struct SessionInfo {
        const char *id;
        const char *tenant;
        const char *runtime;
        bool active;
        uint64_t created_usec;         /* CLOCK_REALTIME */
        uint64_t last_access_usec;
        unsigned executions;
} SessionInfo;
void session_info(Session *s, SessionInfo *ret);
Session *session_first(SessionRegistry *r);
Session *session_next(Session *s);
