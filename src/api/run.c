/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/run.h"
#include "session/session.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/stream-filter.h"
#include "shared/crypto.h"
#include "audit/audit.h"

struct ApiRun {
        ApiContext *ctx;
        ApiRunOps ops;
        void *userdata;
        ExecRequest *req;           /* until the execution takes it */
        Execution *exec;
        SessionUse *use;
        Sandbox *session_sb;
        ExecQueueWaiter *waiter;
        bool has_slot;
        bool interactive;
        bool paused;
        bool done;
        bool cancelled;
        int error;
        char *message;
        sd_event_source *done_source;
        StreamFilter filter[3];
        ExecPhase last_phase;
        AuthInfo who;
        char remote[64];
        Buffer early_stdin;         /* stdin that came before the program started */
        bool early_eof;
        ApiRun *prev, *next;
};

static const char queue_full[] = "Too many requests — queue is full";

unsigned api_run_error_status(int error) {
        switch (error) {
        case -EBUSY:
        case -EUSERS:
                return MHD_HTTP_TOO_MANY_REQUESTS;
        case -ENOENT:
                return MHD_HTTP_NOT_FOUND;
        case -EXDEV:
        case -EINVAL:
                return MHD_HTTP_BAD_REQUEST;
        case -ETIMEDOUT:
                return MHD_HTTP_REQUEST_TIMEOUT;
        case -ESHUTDOWN:
        case -ECANCELED:
                return MHD_HTTP_SERVICE_UNAVAILABLE;
        default:
                return MHD_HTTP_INTERNAL_SERVER_ERROR;
        }
}

static void emit(ApiRun *s, const char *type, const char *data, const char *phase) {
        json_object *o;
        const char *text;
        size_t len;

        if (!s->ops.event || !(o = json_object_new_object()))
                return;
        json_add(o, "type", json_object_new_string(type));
        json_add(o, "data", json_object_new_string(data));
        json_add(o, "phase", json_object_new_string(phase));
        text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (text)
                s->ops.event(s->userdata, text, len);
        json_object_put(o);
}

static const char *phase_name(ExecPhase p) {
        return p == EXEC_PHASE_SETUP ? "setup" : "code";
}

static void flush_filter(ApiRun *s, int stream, ExecPhase phase, const char *data, size_t len, bool final);

static void flush_filter(ApiRun *s, int stream, ExecPhase phase, const char *data, size_t len, bool final) {
        Buffer out = {};
        if (stream_filter_feed(&s->filter[stream], data, len, final, &out) >= 0 && out.size > 0)
                emit(s, stream == EXEC_STDOUT ? "stdout" : "stderr", out.data, phase_name(phase));
        buffer_done(&out);
}

/* The setup script succeeded: its output is complete and, as upstream does, it gets its own
 * exit event before the code's output starts. */
static void on_setup_done(Execution *e, void *userdata) {
        ApiRun *s = userdata;

        flush_filter(s, EXEC_STDOUT, EXEC_PHASE_SETUP, NULL, 0, true);
        flush_filter(s, EXEC_STDERR, EXEC_PHASE_SETUP, NULL, 0, true);
        emit(s, "exit", "0", phase_name(EXEC_PHASE_SETUP));
        s->last_phase = EXEC_PHASE_CODE;
}

static void on_output(Execution *e, ExecStream stream, ExecPhase phase, const char *data, size_t len, void *userdata) {
        ApiRun *s = userdata;

        if (phase != s->last_phase) {
                /* Whatever the setup phase held back belongs to it. */
                flush_filter(s, EXEC_STDOUT, s->last_phase, NULL, 0, true);
                flush_filter(s, EXEC_STDERR, s->last_phase, NULL, 0, true);
                s->last_phase = phase;
        }
        flush_filter(s, stream, phase, data, len, false);
}

static int on_done_defer(sd_event_source *es, void *userdata) {
        ApiRun *s = userdata;
        s->done_source = sd_event_source_disable_unref(s->done_source);
        s->ops.done(s->userdata, s->error, s->message,
                    s->exec && s->error >= 0 ? execution_result(s->exec) : NULL,
                    s->exec ? execution_request(s->exec) : s->req);   /* may free s */
        return 0;
}

static void finish(ApiRun *s, int error, const char *message) {
        if (s->done)
                return;
        s->done = true;
        s->error = error;
        if (message && !s->message)
                s->message = strdup(message);
        /* The session may take its next run at once. */
        session_use_done(TAKE_PTR(s->use));
        if (error < 0)
                emit(s, "error", message ?: "Execution failed", phase_name(s->last_phase));
        (void) sd_event_add_defer(s->ctx->event, &s->done_source, on_done_defer, s);
}

static void emit_truncated(ApiRun *s, const char *type, uint64_t total, uint64_t max) {
        char buf[160];
        snprintf(buf, sizeof(buf), "\n\n--- OUTPUT TRUNCATED (%" PRIu64 " bytes, limit: %" PRIu64 ") ---", total, max);
        emit(s, type, buf, phase_name(s->last_phase));
}

/* One audit record per finished execution, buffered or streamed. */
static void audit_execution(ApiRun *s, const ExecResult *res, const ExecRequest *req) {
        char code_hash[SHA256_HEX_LEN + 1], exit_code[16], duration[24];
        const char *code = req->code ?: req->cmd ?: "";
        const char *user = NULL;
        json_object *v;
        _cleanup_free_ char *out = NULL, *err = NULL;
        Audit *a = s->ctx->audit;

        if (!a)
                return;
        sha256_hex(code, strlen(code), code_hash);
        snprintf(exit_code, sizeof(exit_code), "%d", res->exit_code);
        snprintf(duration, sizeof(duration), "%" PRIu64, res->duration_ms);
        if (req->metadata && json_object_object_get_ex(req->metadata, "userId", &v))
                user = json_object_get_string(v);
        if (audit_include_output(a) && !s->ops.event) {
                out = exec_result_text(res, req, EXEC_STDOUT);
                err = exec_result_text(res, req, EXEC_STDERR);
        }
        AuditField f[] = {
                { "ISOL8_EXECUTION_ID", res->execution_id },
                { "ISOL8_SESSION_ID", req->session_id },
                { "ISOL8_KEY_ID", s->who.key_id[0] ? s->who.key_id : NULL },
                { "ISOL8_TENANT", s->who.tenant },
                { "ISOL8_AUTH_TYPE", auth_type_to_string(s->who.type) },
                { "ISOL8_RUNTIME", runtime_to_string(req->runtime) },
                { "ISOL8_EXIT_CODE", exit_code },
                { "ISOL8_DURATION_MS", duration },
                { "ISOL8_CODE_SHA256", code_hash },
                { "ISOL8_TIMED_OUT", res->timed_out ? "1" : "0" },
                { "ISOL8_OOM_KILLED", res->oom_killed ? "1" : "0" },
                { "ISOL8_STREAMED", s->ops.event ? "1" : "0" },
                { "ISOL8_REMOTE_ADDR", s->remote[0] ? s->remote : NULL },
                { "ISOL8_USER_ID", user },
                { "ISOL8_CODE", audit_include_code(a) ? code : NULL },
                { "ISOL8_STDOUT", out },
                { "ISOL8_STDERR", err },
        };
        {
                char message[256];
                snprintf(message, sizeof(message), "execution %.8s by tenant %s: %s, exit %d, %" PRIu64 " ms%s%s%s",
                         res->execution_id, s->who.tenant, runtime_to_string(req->runtime), res->exit_code, res->duration_ms,
                         req->session_id ? ", in a session" : "", res->timed_out ? ", timed out" : "",
                         res->oom_killed ? ", out of memory" : "");
                audit_emit(a, AUDIT_MESSAGE_EXECUTION, LOG_INFO, "execution", message, f, ELEMENTSOF(f));
        }
}

static void on_exec_done(Execution *e, void *userdata) {
        ApiRun *s = userdata;
        const ExecResult *res = execution_result(e);
        const ExecRequest *req = execution_request(e);
        char buf[160];

        s->ctx->total_executions++;
        if (res->error >= 0)
                audit_execution(s, res, req);
        if (s->ops.event) {
                flush_filter(s, EXEC_STDOUT, s->last_phase, NULL, 0, true);
                flush_filter(s, EXEC_STDERR, s->last_phase, NULL, 0, true);
        }
        if (res->error < 0) {
                finish(s, res->error, res->error == -ECANCELED || res->error == -ESHUTDOWN ? "Execution cancelled" : "Sandbox failure");
                return;
        }
        if (res->out_total > req->limits.max_output)
                emit_truncated(s, "stdout", res->out_total, req->limits.max_output);
        if (res->err_total > req->limits.max_output)
                emit_truncated(s, "stderr", res->err_total, req->limits.max_output);
        if (res->timed_out)
                emit(s, "error", "EXECUTION TIMED OUT", res->setup_failed ? "setup" : "code");
        else if (res->setup_failed) {
                snprintf(buf, sizeof(buf), "Setup script failed (exit code %d)", res->exit_code);
                emit(s, "error", buf, "setup");
        }
        snprintf(buf, sizeof(buf), "%d", res->exit_code);
        emit(s, "exit", buf, res->setup_failed ? "setup" : "code");
        finish(s, 0, NULL);
}

static void start_exec(ApiRun *s) {
        ExecutionCallbacks cb = {
                .on_output = s->ops.event ? on_output : NULL,
                .on_setup_done = s->ops.event ? on_setup_done : NULL,
                .on_done = on_exec_done,
                .interactive_stdin = s->interactive,
        };
        int r;

        s->has_slot = true;
        r = execution_start(&s->ctx->exec, TAKE_PTR(s->req), s->session_sb, &cb, s, &s->exec);
        if (r < 0) {
                finish(s, r, "Sandbox failure");
                return;
        }
        /* The filters borrow the secrets from the request, which the execution now owns. */
        for (int i = 1; i <= 2; i++)
                stream_filter_init(&s->filter[i], execution_request(s->exec)->secret_mask);
        s->ctx->active_executions++;
        if (s->paused)
                execution_pause_output(s->exec, true);
        if (s->early_stdin.size > 0 || s->early_eof) {
                if (s->early_stdin.size > 0)
                        (void) execution_write_stdin(s->exec, s->early_stdin.data, s->early_stdin.size);
                if (s->early_eof)
                        (void) execution_write_stdin(s->exec, NULL, 0);
                buffer_done(&s->early_stdin);
        }
}

static void on_queue(int error, void *userdata) {
        ApiRun *s = userdata;
        s->waiter = NULL;
        if (error < 0) {
                finish(s, error, error == -ETIMEDOUT ? "Timed out waiting for an execution slot" : "Server is shutting down");
                return;
        }
        start_exec(s);
}

static int take_slot(ApiRun *s) {
        int r = exec_queue_acquire(s->ctx->queue, s->who.tenant, on_queue, s, &s->waiter);
        if (r > 0)
                start_exec(s);
        return r < 0 ? r : 0;
}

static void on_session_ready(Sandbox *sb, int error, void *userdata) {
        ApiRun *s = userdata;
        int r;

        if (error < 0) {
                s->use = NULL;  /* the session is gone and took the use with it */
                finish(s, error == -ENOENT ? -ENOENT : error, error == -ENOENT ? "Session not found" : "Sandbox failure");
                return;
        }
        s->session_sb = sb;
        r = take_slot(s);
        if (r < 0)
                finish(s, r, r == -EBUSY ? queue_full : "Execution failed");
}

int api_run_start(ApiContext *ctx, const AuthInfo *who, const char *remote_addr, ExecRequest *req, bool interactive,
                  const ApiRunOps *ops, void *userdata, ApiRun **ret, char **ret_error) {
        ApiRun *s;
        int r;

        *ret_error = NULL;
        s = calloc(1, sizeof(ApiRun));
        if (!s) {
                exec_request_free(req);
                return -ENOMEM;
        }
        s->ctx = ctx;
        s->ops = *ops;
        s->userdata = userdata;
        s->req = req;
        s->interactive = interactive;
        s->who = *who;
        snprintf(s->remote, sizeof(s->remote), "%s", remote_addr ?: "");
        s->last_phase = req->setup_script ? EXEC_PHASE_SETUP : EXEC_PHASE_CODE;

        if (req->session_id) {
                r = session_use(ctx->sessions, who, req, on_session_ready, s, &s->use, ret_error);
                if (r == -EBUSY)
                        r = -EUSERS;
                if (r == -ENOENT && !*ret_error)
                        *ret_error = strdup("Session not found");
        } else {
                r = take_slot(s);
                if (r == -EBUSY)
                        *ret_error = strdup(queue_full);
        }
        if (r < 0) {
                exec_request_free(s->req);
                free(s);
                return r;
        }
        s->next = ctx->runs;
        if (ctx->runs)
                ctx->runs->prev = s;
        ctx->runs = s;
        *ret = s;
        return 0;
}

ApiRun *api_run_free(ApiRun *s) {
        if (!s)
                return NULL;
        if (s->prev)
                s->prev->next = s->next;
        else if (s->ctx->runs == s)
                s->ctx->runs = s->next;
        if (s->next)
                s->next->prev = s->prev;
        exec_queue_cancel(s->waiter);
        session_use_done(s->use);
        if (s->exec) {
                execution_free(s->exec);
                s->ctx->active_executions--;
        }
        if (s->has_slot)
                exec_queue_release(s->ctx->queue);
        exec_request_free(s->req);
        sd_event_source_disable_unref(s->done_source);
        for (int i = 1; i <= 2; i++)
                stream_filter_done(&s->filter[i]);
        free(s->message);
        buffer_done(&s->early_stdin);
        free(s);
        return NULL;
}

void api_run_cancel(ApiRun *s) {
        if (s->done || s->cancelled)
                return;
        s->cancelled = true;
        if (s->exec)
                execution_cancel(s->exec);
        else {
                exec_queue_cancel(TAKE_PTR(s->waiter));
                finish(s, -ECANCELED, "Execution cancelled");
        }
}

void api_cancel_all(ApiContext *ctx) {
        for (ApiRun *s = ctx->runs; s; s = s->next)
                api_run_cancel(s);
}

unsigned api_n_runs(ApiContext *ctx) {
        unsigned n = 0;
        for (ApiRun *s = ctx->runs; s; s = s->next)
                n++;
        return n;
}

int api_run_stdin(ApiRun *s, const char *data, size_t len, bool eof) {
        int r = 0;
        if (s->done)
                return -ESRCH;
        if (!s->exec) {
                /* Waiting for a slot or a session: keep it (bounded) for when the program starts. */
                if (s->early_stdin.size + len > (1u << 20))
                        return -ENOBUFS;
                if (len > 0 && buffer_append(&s->early_stdin, data, len) < 0)
                        return -ENOMEM;
                s->early_eof = s->early_eof || eof;
                return 0;
        }
        if (len > 0)
                r = execution_write_stdin(s->exec, data, len);
        if (r >= 0 && eof)
                r = execution_write_stdin(s->exec, NULL, 0);
        return r;
}

int api_run_signal(ApiRun *s, int sig) {
        if (!s->exec || s->done)
                return -ESRCH;
        return execution_signal(s->exec, sig);
}

void api_run_pause(ApiRun *s, bool pause) {
        if (s->paused == pause)
                return;
        s->paused = pause;
        if (s->exec && !s->done)
                execution_pause_output(s->exec, pause);
}
