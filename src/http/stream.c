/* SPDX-License-Identifier: MIT */
/* A streamed reply: what the producer writes is queued and handed to libmicrohttpd as the
 * client takes it. The connection is suspended whenever there is nothing to send, so no thread
 * waits and nothing spins; while it is suspended a watch on its socket notices a client that
 * goes away. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "http/request-private.h"
#include "shared/log.h"

#define STREAM_HIGH_WATER (1u << 20)
#define STREAM_LOW_WATER (256u << 10)

struct HttpStream {
        HttpRequest *r;                 /* NULL once the request is over */
        struct MHD_Connection *connection;
        HttpServer *server;
        Buffer out;
        size_t off;
        const HttpStreamOps *ops;
        void *userdata;
        sd_event_source *hup;
        bool suspended;
        bool above;                     /* past the high water: drained() is owed */
        bool ended;
        bool ok;
        bool gone_told;
        bool response_gone;             /* MHD is done with the response */
        bool released;                  /* the producer let go */
        bool calling;                   /* in one of the producer's callbacks: not freed meanwhile */
};

static size_t pending(HttpStream *s) {
        return s->out.size - s->off;
}

static void maybe_free(HttpStream *s) {
        if (!s->released || !s->response_gone || s->calling)
                return;
        sd_event_source_disable_unref(s->hup);
        buffer_done(&s->out);
        free(s);
}

static void tell_gone(HttpStream *s) {
        bool tell = !s->gone_told && !s->released && !s->ended;

        /* Nobody reads any more: the body ends, broken, when MHD looks next (and closes). */
        if (!s->ended) {
                s->ended = true;
                s->ok = false;
        }
        s->gone_told = true;
        if (tell && s->ops->gone) {
                s->calling = true;
                s->ops->gone(s->userdata);
                s->calling = false;
        }
}

static void wake(HttpStream *s) {
        if (!s->suspended || !s->connection || s->response_gone)
                return;
        s->suspended = false;
        (void) sd_event_source_set_enabled(s->hup, SD_EVENT_OFF);
        MHD_resume_connection(s->connection);
        http_server_kick(s->server);
}

static int on_hup(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        HttpStream *s = userdata;
        /* The client hung up while we had nothing to say: the producer stops now, and MHD sees it. */
        (void) sd_event_source_set_enabled(es, SD_EVENT_OFF);
        tell_gone(s);
        wake(s);
        maybe_free(s);
        return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
        HttpStream *s = cls;
        size_t n = pending(s);

        if (n > 0) {
                n = MIN(n, max);
                memcpy(buf, s->out.data + s->off, n);
                s->off += n;
                if (s->off == s->out.size) {
                        s->off = 0;
                        s->out.size = 0;
                } else if (s->off > STREAM_HIGH_WATER) {
                        memmove(s->out.data, s->out.data + s->off, s->out.size - s->off);
                        s->out.size -= s->off;
                        s->off = 0;
                }
                if (s->above && pending(s) < STREAM_LOW_WATER) {
                        s->above = false;
                        if (!s->released && !s->gone_told && s->ops->drained) {
                                s->calling = true;
                                s->ops->drained(s->userdata);
                                s->calling = false;
                        }
                }
                return (ssize_t) n;
        }
        if (s->ended)
                return s->ok ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
        /* Nothing to send: step out of MHD's loop until there is. */
        s->suspended = true;
        MHD_suspend_connection(s->connection);
        (void) sd_event_source_set_enabled(s->hup, SD_EVENT_ON);
        return 0;
}

static void stream_response_free(void *cls) {
        HttpStream *s = cls;
        s->response_gone = true;
        s->connection = NULL;
        tell_gone(s);
        maybe_free(s);
}

static void stream_request_gone(HttpRequest *r, void *userdata) {
        HttpStream *s = userdata;
        s->r = NULL;
        s->connection = NULL;
        s->suspended = false;
        (void) sd_event_source_set_enabled(s->hup, SD_EVENT_OFF);
        tell_gone(s);
        maybe_free(s);
}

int http_stream_start(HttpRequest *r, unsigned status, const char *const *headers, const HttpStreamOps *ops, void *userdata,
                      HttpStream **ret) {
        const union MHD_ConnectionInfo *ci;
        struct MHD_Response *resp;
        HttpStream *s;
        int k;

        s = calloc(1, sizeof(HttpStream));
        if (!s)
                return -ENOMEM;
        s->r = r;
        s->connection = r->connection;
        s->server = r->server;
        s->ops = ops;
        s->userdata = userdata;
        ci = MHD_get_connection_info(r->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci && sd_event_add_io(http_server_event(r->server), &s->hup, ci->connect_fd, EPOLLRDHUP, on_hup, s) >= 0) {
                (void) sd_event_source_set_description(s->hup, "http-stream-hangup");
                (void) sd_event_source_set_enabled(s->hup, SD_EVENT_OFF);
        }
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_response_free);
        if (!resp) {
                sd_event_source_disable_unref(s->hup);
                free(s);
                return -ENOMEM;
        }
        for (const char *const *h = headers; h && h[0]; h += 2)
                MHD_add_response_header(resp, h[0], h[1]);
        k = http_reply_stream(r, status, resp, stream_request_gone, s);
        if (k < 0) {
                /* The response was destroyed (its free callback ran): only the producer's part is left. */
                s->released = true;
                maybe_free(s);
                return k;
        }
        *ret = s;
        return 0;
}

int http_stream_write(HttpStream *s, const void *p, size_t n) {
        if (s->gone_told || s->ended || s->response_gone)
                return -EPIPE;
        if (buffer_append(&s->out, p, n) < 0)
                return -ENOMEM;
        wake(s);
        if (pending(s) > STREAM_HIGH_WATER) {
                s->above = true;
                return 1;
        }
        return 0;
}

size_t http_stream_pending(HttpStream *s) {
        return pending(s);
}

void http_stream_end(HttpStream *s, bool ok) {
        if (s->ended)
                return;
        s->ended = true;
        s->ok = ok;
        wake(s);
}

void http_stream_release(HttpStream *s) {
        if (!s)
                return;
        s->released = true;
        maybe_free(s);
}
