/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/stream-run.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/stream-filter.h"

struct StreamRun {
        ApiContext *ctx;
        StreamSinkOps ops;
        void *userdata;
        ExecRequest *req;           /* until the execution takes it */
        Execution *exec;
        ExecQueueWaiter *waiter;
        bool has_slot;
        bool interactive;
        bool paused;
        bool done;
        bool cancelled;
        sd_event_source *done_source;
        StreamFilter filter[3];
        ExecPhase last_phase;
        char *const *secrets;
        StreamRun *prev, *next;
};

void api_cancel_streams(ApiContext *ctx) {
        for (StreamRun *s = ctx->streams; s; s = s->next)
                stream_run_cancel(s);
}

unsigned api_n_streams(ApiContext *ctx) {
        unsigned n = 0;
        for (StreamRun *s = ctx->streams; s; s = s->next)
                n++;
        return n;
}

static void emit(StreamRun *s, const char *type, const char *data, const char *phase) {
        json_object *o = json_object_new_object();
        const char *text;
        size_t len;

        if (!o)
                return;
        json_add(o, "type", json_object_new_string(type));
        json_add(o, "data", json_object_new_string(data));
        if (phase)
                json_add(o, "phase", json_object_new_string(phase));
        text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (text)
                s->ops.event(s->userdata, text, len);
        json_object_put(o);
}

static const char *phase_name(ExecPhase p) {
        return p == EXEC_PHASE_SETUP ? "setup" : "code";
}

static void flush_filter(StreamRun *s, int stream, ExecPhase phase, const char *data, size_t len, bool final) {
        Buffer out = {};
        if (stream_filter_feed(&s->filter[stream], data, len, final, &out) >= 0 && out.size > 0)
                emit(s, stream == EXEC_STDOUT ? "stdout" : "stderr", out.data, phase_name(phase));
        buffer_done(&out);
}

static void on_output(Execution *e, ExecStream stream, ExecPhase phase, const char *data, size_t len, void *userdata) {
        StreamRun *s = userdata;

        if (phase != s->last_phase) {
                /* Whatever the setup phase held back belongs to it. */
                flush_filter(s, EXEC_STDOUT, s->last_phase, NULL, 0, true);
                flush_filter(s, EXEC_STDERR, s->last_phase, NULL, 0, true);
                s->last_phase = phase;
        }
        flush_filter(s, stream, phase, data, len, false);
}

static int on_done_defer(sd_event_source *es, void *userdata) {
        StreamRun *s = userdata;
        s->done_source = sd_event_source_disable_unref(s->done_source);
        s->ops.done(s->userdata);   /* may free s */
        return 0;
}

static void finish(StreamRun *s) {
        s->done = true;
        (void) sd_event_add_defer(s->ctx->event, &s->done_source, on_done_defer, s);
}

static void on_exec_done(Execution *e, void *userdata) {
        StreamRun *s = userdata;
        const ExecResult *res = execution_result(e);
        const ExecRequest *req = execution_request(e);
        char buf[160];

        s->ctx->total_executions++;
        flush_filter(s, EXEC_STDOUT, s->last_phase, NULL, 0, true);
        flush_filter(s, EXEC_STDERR, s->last_phase, NULL, 0, true);
        if (res->error < 0) {
                emit(s, "error", res->error == -ESHUTDOWN || res->error == -ECANCELED ? "Execution cancelled" :
                                 "Sandbox failure", NULL);
                finish(s);
                return;
        }
        if (res->out_total > req->limits.max_output) {
                snprintf(buf, sizeof(buf), "\n\n--- OUTPUT TRUNCATED (%" PRIu64 " bytes, limit: %" PRIu64 ") ---", res->out_total,
                         req->limits.max_output);
                emit(s, "stdout", buf, phase_name(s->last_phase));
        }
        if (res->err_total > req->limits.max_output) {
                snprintf(buf, sizeof(buf), "\n\n--- OUTPUT TRUNCATED (%" PRIu64 " bytes, limit: %" PRIu64 ") ---", res->err_total,
                         req->limits.max_output);
                emit(s, "stderr", buf, phase_name(s->last_phase));
        }
        if (res->timed_out)
                emit(s, "error", "EXECUTION TIMED OUT", res->setup_failed ? "setup" : NULL);
        else if (res->setup_failed) {
                snprintf(buf, sizeof(buf), "Setup script failed (exit code %d)", res->exit_code);
                emit(s, "error", buf, "setup");
        }
        snprintf(buf, sizeof(buf), "%d", res->exit_code);
        emit(s, "exit", buf, res->setup_failed ? "setup" : NULL);
        finish(s);
}

static void start_exec(StreamRun *s) {
        ExecutionCallbacks cb = { .on_output = on_output, .on_done = on_exec_done, .interactive_stdin = s->interactive };
        int r;

        s->has_slot = true;
        s->secrets = s->req->secrets;
        r = execution_start(&s->ctx->exec, TAKE_PTR(s->req), NULL, &cb, s, &s->exec);
        if (r < 0) {
                emit(s, "error", "Sandbox failure", NULL);
                finish(s);
                return;
        }
        /* The filters borrow the secrets from the request, which the execution now owns. */
        for (int i = 1; i <= 2; i++)
                stream_filter_init(&s->filter[i], execution_request(s->exec)->secrets);
        s->ctx->active_executions++;
        if (s->paused)
                execution_pause_output(s->exec, true);
}

static void on_queue(int error, void *userdata) {
        StreamRun *s = userdata;
        s->waiter = NULL;
        if (error < 0) {
                emit(s, "error", error == -ETIMEDOUT ? "Timed out waiting for an execution slot" : "Server is shutting down", NULL);
                finish(s);
                return;
        }
        start_exec(s);
}

int stream_run_start(ApiContext *ctx, ExecRequest *req, bool interactive, const StreamSinkOps *ops, void *userdata,
                     StreamRun **ret) {
        StreamRun *s;
        int r;

        s = calloc(1, sizeof(StreamRun));
        if (!s) {
                exec_request_free(req);
                return -ENOMEM;
        }
        s->ctx = ctx;
        s->ops = *ops;
        s->userdata = userdata;
        s->req = req;
        s->interactive = interactive;
        s->last_phase = req->setup_script ? EXEC_PHASE_SETUP : EXEC_PHASE_CODE;
        r = exec_queue_acquire(ctx->queue, on_queue, s, &s->waiter);
        if (r < 0) {
                exec_request_free(s->req);
                free(s);
                return r;
        }
        s->next = ctx->streams;
        if (ctx->streams)
                ctx->streams->prev = s;
        ctx->streams = s;
        *ret = s;
        if (r > 0)
                start_exec(s);
        return 0;
}

StreamRun *stream_run_free(StreamRun *s) {
        if (!s)
                return NULL;
        if (s->prev)
                s->prev->next = s->next;
        else if (s->ctx->streams == s)
                s->ctx->streams = s->next;
        if (s->next)
                s->next->prev = s->prev;
        exec_queue_cancel(s->waiter);
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
        free(s);
        return NULL;
}

void stream_run_cancel(StreamRun *s) {
        if (s->done || s->cancelled)
                return;
        s->cancelled = true;
        if (s->waiter) {
                exec_queue_cancel(TAKE_PTR(s->waiter));
                finish(s);
        } else if (s->exec)
                execution_cancel(s->exec);
}

int stream_run_stdin(StreamRun *s, const char *data, size_t len, bool eof) {
        int r = 0;
        if (!s->exec || s->done)
                return -ESRCH;
        if (len > 0)
                r = execution_write_stdin(s->exec, data, len);
        if (r >= 0 && eof)
                r = execution_write_stdin(s->exec, NULL, 0);
        return r;
}

int stream_run_signal(StreamRun *s, int sig) {
        if (!s->exec || s->done)
                return -ESRCH;
        return execution_signal(s->exec, sig);
}

void stream_run_pause(StreamRun *s, bool pause) {
        if (s->paused == pause)
                return;
        s->paused = pause;
        if (s->exec && !s->done)
                execution_pause_output(s->exec, pause);
}

bool stream_run_is_done(StreamRun *s) {
        return s->done;
}
