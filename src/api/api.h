/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "core/curl.h"
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
        CurlLoop *curl;                 /* forwarding to the cluster's other servers, made at first use */
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

/* The client's address: the peer's, or for a request another server of the cluster forwarded,
 * its client's (X-Isol8-Client, covered by the signature). */
const char *api_request_remote(HttpRequest *r);

/* Several servers as one (api/cluster.c). A request naming a session: served here (returns 0,
 * the caller goes on at once), or taken care of (returns 1): forwarded to the server holding
 * it, answered (lost: 410; DELETE of a lost one: ok, the id is free again), or waiting for the session directory, after which here(r, ctx, data)
 * goes on if the session is (or, with API_ROUTE_CLAIM, is to be made) here. data is taken
 * (free_data) unless 0 is returned. */
typedef void (*ApiHereFn)(HttpRequest *r, ApiContext *ctx, void *data);
#define API_ROUTE_CLAIM  (1u << 0)
#define API_ROUTE_DELETE (1u << 1)
#define API_ROUTE_PROBE  (1u << 2)   /* only say whether it is served here now (0) or not (1); nothing starts */
int api_session_route(HttpRequest *r, ApiContext *ctx, const char *session_id, unsigned flags, ApiHereFn here, void *data,
                      void (*free_data)(void *));
/* Forwards r as it came (method, path, query, body) to another server of the cluster and
 * answers with what that server answers. */
int api_forward(HttpRequest *r, ApiContext *ctx, const char *node, const char *base_url);

/* /execute and /execute/stream: parses the envelope, finds where its session is served, and
 * start()s it here (at once, or once the directory answered) or forwards it. start takes req
 * and answers r (or returns < 0 for a 500). */
typedef int (*ApiExecStartFn)(HttpRequest *r, ApiContext *ctx, ExecRequest *req);
int api_execute_routed(HttpRequest *r, ApiContext *ctx, ApiExecStartFn start);
/* Parses and validates an execution envelope; replies 400 itself (returns > 0) on bad input. */
int api_parse_exec_request(HttpRequest *r, ApiContext *ctx, ExecRequest **ret);

/* Outcomes and failures as HTTP answers: one table (api/outcome-http.c). r < 0 is an internal
 * failure: logged here, once, and answered 500. r > 0 is an Outcome, answered with its status
 * and message (or the outcome's own words). */
unsigned api_outcome_status(Outcome o);
int api_reply_outcome(HttpRequest *req, int r, const char *message);
