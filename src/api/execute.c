/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/render.h"
#include "api/request.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

/* A run that ended without a result: a refused path in request.files says which errno the
 * file layer gave; every internal failure is a 500, logged once in api_reply_outcome(). */
static void reply_run_failure(HttpRequest *r, int error, Outcome outcome, const ExecResult *res, const char *message) {
        if (error < 0)
                (void) api_reply_outcome(r, error, NULL);
        else if (outcome == OUTCOME_PATH_REFUSED)
                (void) http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Refused path in request.files or request.workdir");
        else if (outcome == OUTCOME_TOO_BIG)
                (void) http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "request.files do not fit in the sandbox");
        else
                (void) api_reply_outcome(r, (int) outcome, message);
}

typedef struct BufferedCall {
        HttpRequest *r;
        Run *run;
} BufferedCall;

static void buffered_done(void *userdata, int error, Outcome outcome, const char *message, const ExecResult *res,
                          const ExecRequest *req) {
        BufferedCall *c = userdata;

        if (c->r) {
                if (error < 0 || outcome != OUTCOME_OK)
                        reply_run_failure(c->r, error, outcome, res, message);
                else {
                        json_object *o = api_result_json(res, req);
                        if (o)
                                http_reply_json(c->r, MHD_HTTP_OK, o);
                        else
                                http_reply_error(c->r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
                }
        }
        run_free(c->run);
        free(c);
}

static void buffered_request_gone(HttpRequest *r, void *userdata) {
        BufferedCall *c = userdata;
        c->r = NULL;
        run_cancel(c->run);   /* done follows and frees */
}

int api_parse_exec_request(HttpRequest *r, ApiContext *ctx, ExecRequest **ret) {
        _cleanup_json_ json_object *body = NULL;
        _cleanup_free_ char *error = NULL;
        int k;

        if (ctx->m->shutting_down)
                return api_reply_outcome(r, OUTCOME_SHUTTING_DOWN, NULL), 1;
        if (http_request_body_json(r, false, &body) > 0)
                return 1;
        k = api_request_parse(body, &ctx->m->policy, ret, &error);
        if (k == -EINVAL)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", error ?: "Invalid request"), 1;
        return k;
}

static int execute_here(HttpRequest *r, ApiContext *ctx, ExecRequest *req) {
        static const RunOps ops = { .done = buffered_done };
        _cleanup_free_ char *error = NULL;
        BufferedCall *c;
        int k;

        c = calloc(1, sizeof(BufferedCall));
        if (!c) {
                exec_request_free(req);
                return -ENOMEM;
        }
        c->r = r;
        k = run_start(ctx->m, http_request_auth(r), api_request_remote(r), req, false, &ops, c, &c->run, &error);
        if (k != 0) {
                free(c);
                return api_reply_outcome(r, k, error);
        }
        http_request_suspend(r, buffered_request_gone, c);
        return 0;
}

/* A parsed run waiting for the session directory, and how it starts once it is known to be here. */
typedef struct ExecRoute {
        ExecRequest *req;
        ApiExecStartFn start;
} ExecRoute;

static void exec_route_free(void *data) {
        ExecRoute *e = data;
        exec_request_free(e->req);
        free(e);
}

static void exec_route_here(HttpRequest *r, ApiContext *ctx, void *data) {
        ExecRoute *e = data;
        int k = e->start(r, ctx, TAKE_PTR(e->req));
        exec_route_free(e);
        if (k < 0)
                (void) api_reply_outcome(r, k, NULL);
}

int api_execute_routed(HttpRequest *r, ApiContext *ctx, ApiExecStartFn start) {
        ExecRequest *req = NULL;
        ExecRoute *e;
        int k;

        k = api_parse_exec_request(r, ctx, &req);
        if (k != 0)
                return k < 0 ? k : 0;
        /* A session held here (or one server) goes on at once, with no allocation. */
        if (api_session_route(r, ctx, req->session_id, API_ROUTE_CLAIM | API_ROUTE_PROBE, NULL, NULL, NULL) == 0)
                return start(r, ctx, req);
        e = calloc(1, sizeof(ExecRoute));
        if (!e) {
                exec_request_free(req);
                return -ENOMEM;
        }
        e->req = req;
        e->start = start;
        k = api_session_route(r, ctx, req->session_id, API_ROUTE_CLAIM, exec_route_here, e, exec_route_free);
        return k < 0 ? k : 0;
}

int api_execute(HttpRequest *r, void *userdata) {
        return api_execute_routed(r, userdata, execute_here);
}
