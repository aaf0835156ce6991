/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/run.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

/* A number with two decimals, printed as such (not 86.579999999999998). */
static json_object *json_double2(double d) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.2f", d);
        return json_object_new_double_s(strtod(buf, NULL), buf);
}

static json_object *result_json(const ExecResult *res, const ExecRequest *req) {
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

/* What the engine's own failures mean for the client. */
static void reply_engine_error(HttpRequest *r, int error, const char *message) {
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
        default:
                if (api_run_error_status(error) == MHD_HTTP_INTERNAL_SERVER_ERROR)
                        log_error_errno(error, "execution failed in the sandbox engine: %m");
                http_reply_error(r, api_run_error_status(error), "%s", message ?: "Execution failed");
                return;
        }
}

typedef struct BufferedCall {
        HttpRequest *r;
        ApiRun *run;
} BufferedCall;

static void buffered_done(void *userdata, int error, const char *message, const ExecResult *res, const ExecRequest *req) {
        BufferedCall *c = userdata;

        if (c->r) {
                if (error < 0)
                        reply_engine_error(c->r, error, message);
                else if (res->error < 0)
                        reply_engine_error(c->r, res->error, NULL);
                else {
                        json_object *o = result_json(res, req);
                        if (o)
                                http_reply_json(c->r, MHD_HTTP_OK, o);
                        else
                                http_reply_error(c->r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
                }
        }
        api_run_free(c->run);
        free(c);
}

static void buffered_request_gone(HttpRequest *r, void *userdata) {
        BufferedCall *c = userdata;
        c->r = NULL;
        api_run_cancel(c->run);   /* done follows and frees */
}

int api_parse_exec_request(HttpRequest *r, ApiContext *ctx, ExecRequest **ret) {
        _cleanup_json_ json_object *body = NULL;
        _cleanup_free_ char *error = NULL;
        int k;

        if (ctx->shutting_down)
                return http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Server is shutting down"), 1;
        if (http_request_body_json(r, false, &body) > 0)
                return 1;
        k = exec_request_parse(body, &ctx->policy, ret, &error);
        if (k == -EINVAL)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", error ?: "Invalid request"), 1;
        return k;
}

int api_execute(HttpRequest *r, void *userdata) {
        static const ApiRunOps ops = { .done = buffered_done };
        ApiContext *ctx = userdata;
        _cleanup_free_ char *error = NULL;
        ExecRequest *req = NULL;
        BufferedCall *c;
        int k;

        k = api_parse_exec_request(r, ctx, &req);
        if (k != 0)
                return k < 0 ? k : 0;
        c = calloc(1, sizeof(BufferedCall));
        if (!c) {
                exec_request_free(req);
                return -ENOMEM;
        }
        c->r = r;
        k = api_run_start(ctx, &r->auth, r->remote_addr, req, false, &ops, c, &c->run, &error);
        if (k < 0) {
                free(c);
                return http_reply_error(r, api_run_error_status(k), "%s", error ?: strerror(-k));
        }
        http_request_suspend(r, buffered_request_gone, c);
        return 0;
}
