/* SPDX-License-Identifier: MIT */
/* POST /execute/stream: Server-Sent Events, a run's events written to an HttpStream
 * (http/stream.c), which hands them to the client at its pace. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "api/api.h"
#include "api/render.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

typedef struct SseCall {
        ApiContext *ctx;
        HttpStream *stream;             /* NULL once the client is gone */
        Run *run;
        sd_event_source *keepalive;
} SseCall;

static void sse_free(SseCall *c) {
        run_free(c->run);
        sd_event_source_disable_unref(c->keepalive);
        http_stream_release(c->stream);
        free(c);
}

static int on_keepalive(sd_event_source *s, uint64_t usec, void *userdata) {
        SseCall *c = userdata;
        if (c->stream)
                (void) http_stream_write(c->stream, ": keep-alive\n\n", 14);
        (void) sd_event_source_set_time_relative(s, c->ctx->sse_keepalive_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static void sse_event(void *userdata, const RunEvent *ev) {
        SseCall *c = userdata;
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *frame = NULL;
        const char *json;
        size_t len;

        if (!c->stream || !(o = api_event_object(ev)) || !(json = api_event_text(o, &len)) ||
            asprintf(&frame, "data: %s\n\n", json) < 0)
                return;
        (void) sd_event_source_set_time_relative(c->keepalive, c->ctx->sse_keepalive_usec);
        if (http_stream_write(c->stream, frame, strlen(frame)) > 0)
                run_pause(c->run, true);
}

static void sse_done(void *userdata, int error, Outcome outcome, const char *message, const ExecResult *res,
                     const ExecRequest *req) {
        SseCall *c = userdata;
        if (c->stream)
                http_stream_end(c->stream, true);
        sse_free(c);
}

static void sse_drained(void *userdata) {
        SseCall *c = userdata;
        run_pause(c->run, false);
}

/* The client went away: the run ends now; its end (sse_done) frees the call. */
static void sse_gone(void *userdata) {
        SseCall *c = userdata;
        http_stream_release(TAKE_PTR(c->stream));
        run_cancel(c->run);
}

static int stream_here(HttpRequest *r, ApiContext *ctx, ExecRequest *req) {
        static const RunOps ops = { .event = sse_event, .done = sse_done };
        static const HttpStreamOps stream_ops = { .drained = sse_drained, .gone = sse_gone };
        static const char *const headers[] = {
                "Content-Type", "text/event-stream", "Cache-Control", "no-cache", "X-Accel-Buffering", "no", NULL,
        };
        _cleanup_free_ char *error = NULL;
        SseCall *c;
        int k;

        c = calloc(1, sizeof(SseCall));
        if (!c) {
                exec_request_free(req);
                return -ENOMEM;
        }
        c->ctx = ctx;
        k = run_start(ctx->m, http_request_auth(r), api_request_remote(r), req, false, &ops, c, &c->run, &error);
        if (k != 0) {
                free(c);
                return api_reply_outcome(r, k, error);
        }
        k = http_stream_start(r, MHD_HTTP_OK, headers, &stream_ops, c, &c->stream);
        if (k < 0) {
                run_cancel(c->run);   /* its end frees c */
                return k;
        }
        (void) sd_event_add_time_relative(ctx->event, &c->keepalive, CLOCK_MONOTONIC, ctx->sse_keepalive_usec, 10000,
                                          on_keepalive, c);
        (void) sd_event_source_set_description(c->keepalive, "sse-keepalive");
        return 0;
}

int api_execute_stream(HttpRequest *r, void *userdata) {
        return api_execute_routed(r, userdata, stream_here);
}
