/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "http/http.h"
#include "sandbox/queue.h"
#include "sandbox/run.h"
#include "sandbox/spec.h"
#include "session/session.h"
#include "auth/keystore.h"
#include "audit/audit.h"

/* What the route handlers may use; filled by the daemon, which owns every part. */
typedef struct ApiContext {
        sd_event *event;
        ExecContext exec;
        SpecPolicy policy;
        ExecQueue *queue;
        uint64_t sse_keepalive_usec;
        bool shutting_down;
        uint64_t total_executions;
        unsigned active_executions;
        SessionRegistry *sessions;
        KeyStore *keys;               /* NULL when DB-backed auth is off */
        Audit *audit;                 /* NULL when auditing is off */
        uint64_t default_ttl_ms;
        /* Runs under way (buffered and streamed), so shutdown can cancel them. */
        struct ApiRun *runs;
} ApiContext;

const Route *api_routes(size_t *ret_n);

/* Cancels every run under way (shutdown); their replies follow from the loop. */
void api_cancel_all(ApiContext *ctx);
unsigned api_n_runs(ApiContext *ctx);

int api_health(HttpRequest *r, void *userdata);
int api_execute(HttpRequest *r, void *userdata);
int api_queue_status(HttpRequest *r, void *userdata);
int api_execute_stream(HttpRequest *r, void *userdata);
int api_execute_ws(HttpRequest *r, void *userdata);
int api_sessions_list(HttpRequest *r, void *userdata);
int api_session_delete(HttpRequest *r, void *userdata);
int api_file_put(HttpRequest *r, void *userdata);
int api_file_get(HttpRequest *r, void *userdata);
int api_cleanup(HttpRequest *r, void *userdata);
int api_auth_keys_create(HttpRequest *r, void *userdata);
int api_auth_keys_list(HttpRequest *r, void *userdata);
int api_auth_keys_revoke(HttpRequest *r, void *userdata);
int api_auth_login(HttpRequest *r, void *userdata);
/* Parses and validates an execution envelope; replies 400 itself (returns > 0) on bad input. */
int api_parse_exec_request(HttpRequest *r, ApiContext *ctx, ExecRequest **ret);
/* Audit records for key changes; via is "http" or "dbus". */
void api_audit_key(Audit *a, bool created, const char *id, const char *tenant, const char *name, const char *via);
