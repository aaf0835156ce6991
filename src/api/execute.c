/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

typedef struct ApiCall {
        ApiContext *ctx;
        HttpRequest *r;
        ExecRequest *req;          /* until the execution takes it */
        Execution *exec;
        ExecQueueWaiter *waiter;
        bool has_slot;
        struct ApiCall *prev, *next;
} ApiCall;

static void call_link(ApiCall *c) {
        ApiContext *ctx = c->ctx;
        c->next = ctx->calls;
        if (ctx->calls)
                ctx->calls->prev = c;
        ctx->calls = c;
}

static void call_free(ApiCall *c) {
        ApiContext *ctx = c->ctx;
        if (c->prev)
                c->prev->next = c->next;
        else if (ctx->calls == c)
                ctx->calls = c->next;
        if (c->next)
                c->next->prev = c->prev;
        exec_queue_cancel(c->waiter);
        if (c->exec) {
                execution_free(c->exec);
                ctx->active_executions--;
        }
        if (c->has_slot)
                exec_queue_release(ctx->queue);
        exec_request_free(c->req);
        free(c);
}

unsigned api_n_calls(ApiContext *ctx) {
        unsigned n = api_n_streams(ctx);
        for (ApiCall *c = ctx->calls; c; c = c->next)
                n++;
        return n;
}

static void on_request_gone(HttpRequest *r, void *userdata) {
        ApiCall *c = userdata;
        c->r = NULL;
        if (c->exec && !execution_is_done(c->exec))
                execution_cancel(c->exec);   /* on_done frees the call */
        else if (!c->exec)
                call_free(c);
}

/* A number with two decimals, printed as such (not 86.579999999999998). */
static json_object *json_double2(double d) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.2f", d);
        return json_object_new_double_s(strtod(buf, NULL), buf);
}

json_object *api_result_json(const ExecResult *res, const ExecRequest *req);
json_object *api_result_json(const ExecResult *res, const ExecRequest *req) {
        _cleanup_free_ char *out = exec_result_text(res, req, EXEC_STDOUT);
        _cleanup_free_ char *err = exec_result_text(res, req, EXEC_STDERR);
        json_object *o = json_object_new_object(), *ru = json_object_new_object();
        char ts[64];

        if (!o || !ru || !out || !err) {
                json_object_put(o);
                json_object_put(ru);
                return NULL;
        }
        json_add(o, "stdout", json_object_new_string(out));
        json_add(o, "stderr", json_object_new_string(err));
        json_add(o, "exitCode", json_object_new_int(res->exit_code));
        json_add(o, "durationMs", json_object_new_int64((int64_t) res->duration_ms));
        json_add(o, "truncated", json_object_new_boolean(res->truncated));
        json_add(o, "executionId", json_object_new_string(res->execution_id));
        json_add(o, "runtime", json_object_new_string(runtime_to_string(req->runtime)));
        json_add(o, "timestamp", json_object_new_string(format_iso8601(res->started_realtime_usec, ts)));
        json_add(o, "containerId", json_object_new_string(res->container_id));
        if (res->files)
                json_add(o, "files", json_object_get(res->files));
        json_add(ru, "cpuPercent", json_double2(res->cpu_percent));
        json_add(ru, "memoryMB", json_double2(res->memory_mb));
        json_add(ru, "peakMemoryMB", json_double2(res->peak_memory_mb));
        json_add(ru, "networkBytesIn", json_object_new_int64((int64_t) res->net_in));
        json_add(ru, "networkBytesOut", json_object_new_int64((int64_t) res->net_out));
        json_add(o, "resourceUsage", ru);
        json_add(o, "timedOut", json_object_new_boolean(res->timed_out));
        json_add(o, "oomKilled", json_object_new_boolean(res->oom_killed));
        json_add(o, "pidsLimitHit", json_object_new_boolean(res->pids_limited));
        if (res->signal > 0)
                json_add(o, "signal", json_object_new_string(sigabbrev_np(res->signal) ?: "?"));
        return o;
}

static void reply_engine_error(HttpRequest *r, int error) {
        switch (error) {
        case -EXDEV:
        case -ELOOP:
        case -EPERM:
        case -ENOTDIR:
        case -EISDIR:
        case -EINVAL:
        case -ENAMETOOLONG:
                http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Refused path in request.files or request.workdir (%s)", strerror(-error));
                return;
        case -ENOSPC:
        case -EFBIG:
        case -EDQUOT:
                http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "request.files do not fit in the sandbox");
                return;
        case -ESHUTDOWN:
        case -ECANCELED:
                http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Server is shutting down");
                return;
        default:
                log_error_errno(error, "execution failed in the sandbox engine: %m");
                http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Sandbox failure: %s", strerror(-error));
                return;
        }
}

static void on_exec_done(Execution *e, void *userdata) {
        ApiCall *c = userdata;
        const ExecResult *res = execution_result(e);

        c->ctx->total_executions++;
        if (c->r) {
                if (res->error < 0)
                        reply_engine_error(c->r, res->error);
                else {
                        json_object *o = api_result_json(res, execution_request(e));
                        if (o)
                                http_reply_json(c->r, MHD_HTTP_OK, o);
                        else
                                http_reply_error(c->r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
                }
        }
        call_free(c);
}

static void call_start(ApiCall *c) {
        static const ExecutionCallbacks cb = { .on_done = on_exec_done };
        int k;

        c->has_slot = true;
        k = execution_start(&c->ctx->exec, TAKE_PTR(c->req), NULL, &cb, c, &c->exec);
        if (k < 0) {
                if (c->r)
                        http_reply_errno(c->r, k, NULL);
                call_free(c);
                return;
        }
        c->ctx->active_executions++;
}

static void on_queue(int error, void *userdata) {
        ApiCall *c = userdata;
        c->waiter = NULL;
        if (error < 0) {
                if (c->r) {
                        if (error == -ETIMEDOUT)
                                http_reply_error(c->r, MHD_HTTP_REQUEST_TIMEOUT, "Timed out waiting for an execution slot");
                        else
                                http_reply_errno(c->r, error, NULL);
                }
                call_free(c);
                return;
        }
        call_start(c);
}

int api_execute(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        _cleanup_json_ json_object *body = NULL;
        _cleanup_(exec_request_freep) ExecRequest *req = NULL;
        _cleanup_free_ char *error = NULL;
        ApiCall *c;
        int k;

        if (ctx->shutting_down)
                return http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Server is shutting down");
        if (http_request_body_json(r, false, &body) > 0)
                return 0;
        k = exec_request_parse(body, &ctx->policy, &req, &error);
        if (k == -EINVAL)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", error ?: "Invalid request");
        if (k < 0)
                return k;
        if (req->session_id)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "sessionId is not supported by this server yet");

        c = calloc(1, sizeof(ApiCall));
        if (!c)
                return -ENOMEM;
        c->ctx = ctx;
        c->r = r;
        c->req = TAKE_PTR(req);
        call_link(c);

        k = exec_queue_acquire(ctx->queue, on_queue, c, &c->waiter);
        if (k == -EBUSY) {
                call_free(c);
                return http_reply_error(r, MHD_HTTP_TOO_MANY_REQUESTS, "Too many requests — queue is full");
        }
        if (k < 0) {
                call_free(c);
                return k;
        }
        http_request_suspend(r, on_request_gone, c);
        if (k > 0)
                call_start(c);
        return 0;
}

void api_cancel_all(ApiContext *ctx) {
        api_cancel_streams(ctx);
        for (ApiCall *c = ctx->calls, *next; c; c = next) {
                next = c->next;
                if (c->exec)
                        execution_cancel(c->exec);
                else if (c->waiter) {
                        exec_queue_cancel(TAKE_PTR(c->waiter));
                        if (c->r)
                                http_reply_error(c->r, MHD_HTTP_SERVICE_UNAVAILABLE, "Server is shutting down");
                        call_free(c);
                }
        }
}

static const Route routes[] = {
        { "GET",  "/health",         ROUTE_PUBLIC,  api_health, 0 },
        { "POST", "/execute",        ROUTE_ANY_KEY, api_execute, 0 },
        { "POST", "/execute/stream", ROUTE_ANY_KEY, api_execute_stream, 0 },
        { "GET",  "/execute/ws",     ROUTE_ANY_KEY, api_execute_ws, ROUTE_UPGRADE },
        { "GET",  "/queue/status",   ROUTE_ANY_KEY, api_queue_status, 0 },
};

const Route *api_routes(size_t *ret_n) {
        *ret_n = ELEMENTSOF(routes);
        return routes;
}
