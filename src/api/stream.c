/* SPDX-License-Identifier: MIT */
/* POST /execute/stream: Server-Sent Events over a libmicrohttpd callback response. The
 * connection is suspended whenever there is nothing to send, so no thread waits and nothing
 * spins; while it is suspended a watch on its socket notices a client that goes away. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "api/api.h"
#include "api/render.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

#define SSE_HIGH_WATER (1u << 20)
#define SSE_LOW_WATER (256u << 10)

typedef struct SseCall {
        ApiContext *ctx;
        HttpRequest *r;                 /* NULL once MHD finished the request */
        struct MHD_Connection *connection;
        Run *run;
        Buffer out;
        size_t off;
        bool run_done;
        bool response_gone;
        bool suspended;
        sd_event_source *keepalive;
        sd_event_source *hup;
        int fd;
} SseCall;

static void sse_maybe_free(SseCall *c) {
        if (!c->run_done || !c->response_gone)
                return;
        run_free(c->run);
        sd_event_source_disable_unref(c->keepalive);
        sd_event_source_disable_unref(c->hup);
        buffer_done(&c->out);
        free(c);
}

static size_t pending(SseCall *c) {
        return c->out.size - c->off;
}

static void wake(SseCall *c) {
        if (!c->suspended || !c->connection || c->response_gone)
                return;
        c->suspended = false;
        (void) sd_event_source_set_enabled(c->hup, SD_EVENT_OFF);
        MHD_resume_connection(c->connection);
        http_server_kick(http_request_server(c->r));
}

static int on_keepalive(sd_event_source *s, uint64_t usec, void *userdata) {
        SseCall *c = userdata;
        if (!c->run_done) {
                (void) buffer_append(&c->out, ": keep-alive\n\n", 14);
                wake(c);
        }
        (void) sd_event_source_set_time_relative(s, c->ctx->sse_keepalive_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static void sse_event(void *userdata, const RunEvent *ev) {
        SseCall *c = userdata;
        _cleanup_json_ json_object *o = NULL;
        const char *json;
        size_t len;

        if (c->response_gone || !(o = api_event_object(ev)) || !(json = api_event_text(o, &len)))
                return;
        if (buffer_append(&c->out, "data: ", 6) < 0 || buffer_append(&c->out, json, len) < 0 ||
            buffer_append(&c->out, "\n\n", 2) < 0)
                return;
        (void) sd_event_source_set_time_relative(c->keepalive, c->ctx->sse_keepalive_usec);
        if (pending(c) > SSE_HIGH_WATER)
                run_pause(c->run, true);
        wake(c);
}

static void sse_done(void *userdata, int error, Outcome outcome, const char *message, const ExecResult *res,
                     const ExecRequest *req) {
        SseCall *c = userdata;
        c->run_done = true;
        wake(c);
        sse_maybe_free(c);
}

static int on_hup(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SseCall *c = userdata;
        /* The client hung up while we had nothing to say: end the run now, and let MHD see it. */
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (c->run)
                run_cancel(c->run);
        wake(c);
        return 0;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
        SseCall *c = cls;
        size_t n = pending(c);

        if (n > 0) {
                n = MIN(n, max);
                memcpy(buf, c->out.data + c->off, n);
                c->off += n;
                if (c->off == c->out.size) {
                        c->off = 0;
                        c->out.size = 0;
                } else if (c->off > (1u << 20)) {
                        memmove(c->out.data, c->out.data + c->off, c->out.size - c->off);
                        c->out.size -= c->off;
                        c->off = 0;
                }
                if (pending(c) < SSE_LOW_WATER)
                        run_pause(c->run, false);
                return (ssize_t) n;
        }
        if (c->run_done)
                return MHD_CONTENT_READER_END_OF_STREAM;
        /* Nothing to send: step out of MHD's loop until there is. */
        c->suspended = true;
        MHD_suspend_connection(c->connection);
        if (c->hup)
                (void) sd_event_source_set_enabled(c->hup, SD_EVENT_ON);
        return 0;
}

static void sse_response_free(void *cls) {
        SseCall *c = cls;
        c->response_gone = true;
        c->connection = NULL;
        if (c->run && !c->run_done)
                run_cancel(c->run);
        sse_maybe_free(c);
}

static void sse_request_gone(HttpRequest *r, void *userdata) {
        SseCall *c = userdata;
        c->r = NULL;
        c->connection = NULL;
        c->suspended = false;
        if (c->hup)
                (void) sd_event_source_set_enabled(c->hup, SD_EVENT_OFF);
        if (c->run && !c->run_done)
                run_cancel(c->run);
}

int api_execute_stream(HttpRequest *r, void *userdata) {
        static const RunOps ops = { .event = sse_event, .done = sse_done };
        ApiContext *ctx = userdata;
        _cleanup_free_ char *error = NULL;
        ExecRequest *req = NULL;
        const union MHD_ConnectionInfo *ci;
        struct MHD_Response *resp;
        SseCall *c;
        int k;

        k = api_parse_exec_request(r, ctx, &req);
        if (k != 0)
                return k < 0 ? k : 0;
        c = calloc(1, sizeof(SseCall));
        if (!c) {
                exec_request_free(req);
                return -ENOMEM;
        }
        c->ctx = ctx;
        c->r = r;
        c->connection = http_request_connection(r);
        c->fd = -EBADF;
        k = run_start(ctx->m, http_request_auth(r), http_request_remote(r), req, false, &ops, c, &c->run, &error);
        if (k != 0) {
                free(c);
                return api_reply_outcome(r, k, error);
        }
        (void) sd_event_add_time_relative(ctx->event, &c->keepalive, CLOCK_MONOTONIC, ctx->sse_keepalive_usec, 10000,
                                          on_keepalive, c);
        (void) sd_event_source_set_description(c->keepalive, "sse-keepalive");
        ci = MHD_get_connection_info(http_request_connection(r), MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci && sd_event_add_io(ctx->event, &c->hup, ci->connect_fd, EPOLLRDHUP, on_hup, c) >= 0) {
                (void) sd_event_source_set_description(c->hup, "sse-hangup");
                (void) sd_event_source_set_enabled(c->hup, SD_EVENT_OFF);
        }

        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, c, sse_response_free);
        if (!resp) {
                run_cancel(c->run);
                c->response_gone = true;
                return -ENOMEM;
        }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        return http_reply_stream(r, MHD_HTTP_OK, resp, sse_request_gone, c);
}
