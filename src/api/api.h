/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "core/manager.h"
#include "core/run.h"
#include "http/http.h"

/* The HTTP transport: API.md's routes over the core's Manager. It parses requests into core
 * types (api/request.c), calls manager_*() / run_start(), and renders results, events and
 * outcomes (api/render.c, api/outcome-http.c). Nothing here decides policy. */
typedef struct ApiContext {
        Manager *m;
        sd_event *event;
        HttpServer *http;
        uint64_t sse_keepalive_usec;
} ApiContext;

/* Serves the API on listen_fd (taken) and registers with the manager as a transport. */
int api_new(ApiContext **ret, Manager *m, int listen_fd);
ApiContext *api_free(ApiContext *ctx);
DEFINE_TRIVIAL_CLEANUP_FUNC(ApiContext *, api_free);

const Route *api_routes(size_t *ret_n);

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

/* Outcomes and failures as HTTP answers: one table (api/outcome-http.c). r < 0 is an internal
 * failure: logged here, once, and answered 500. r > 0 is an Outcome, answered with its status
 * and message (or the outcome's own words). */
unsigned api_outcome_status(Outcome o);
int api_reply_outcome(HttpRequest *req, int r, const char *message);
