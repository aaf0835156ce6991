/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/ws-relay.h"
#include "core/egress.h"
#include "shared/log.h"
#include "shared/time-util.h"

#define RELAY_HIGH_WATER (1u << 20)
#define RELAY_HEAD_MAX 8192u
#define RELAY_CONNECT_USEC (2 * USEC_PER_SEC)
/* A side that takes nothing of what waits for it for this long ends the relay (as a local
 * WebSocket's peer that does not read is dropped, api/ws.c). */
#define RELAY_STALL_USEC (10 * USEC_PER_SEC)

/* One direction's backlog: bytes read from one side, not yet written to the other. */
typedef struct Side {
        int fd;
        sd_event_source *io;
        Buffer out;                     /* to write to this side */
        size_t off;
        bool eof;                       /* it closed its sending half */
} Side;

struct WsRelay {
        sd_event *event;
        char *host;
        unsigned port;
        Side server, client;
        Buffer head_in;                 /* the server's answer until its head is complete */
        bool upgraded;
        bool ended;
        ResolveQuery *query;
        sd_event_source *timer;         /* the upgrade's bound, then the stall watch */
        sd_event_source *defer;
        WsRelayReadyFn ready;
        WsRelayEndFn end;
        void *userdata;
};

static size_t backlog(const Side *s) {
        return s->out.size - s->off;
}

static void relay_update(WsRelay *r);

static void relay_fail(WsRelay *r, const char *error, bool lost) {
        WsRelayReadyFn ready = TAKE_PTR(r->ready);
        r->server.io = sd_event_source_disable_unref(r->server.io);
        r->timer = sd_event_source_disable_unref(r->timer);
        if (ready)
                ready(r->userdata, error, lost);
}

static int on_end(sd_event_source *s, void *userdata) {
        WsRelay *r = userdata;
        r->defer = sd_event_source_disable_unref(r->defer);
        if (r->end)
                TAKE_PTR(r->end)(r->userdata);
        return 0;
}

/* Over: the owner hears it from the loop, never from inside a callback of ours. */
static void relay_end(WsRelay *r) {
        if (r->ended)
                return;
        r->ended = true;
        r->server.io = sd_event_source_disable_unref(r->server.io);
        r->client.io = sd_event_source_disable_unref(r->client.io);
        if (sd_event_add_defer(r->event, &r->defer, on_end, r) >= 0)
                (void) sd_event_source_set_description(r->defer, "ws-relay-end");
}

static int side_flush(Side *s) {
        while (backlog(s) > 0) {
                ssize_t n = send(s->fd, s->out.data + s->off, backlog(s), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 0 : -errno;
                }
                s->off += (size_t) n;
        }
        s->out.size = s->off = 0;
        return 0;
}

/* Reads what from has sent into to's backlog: 0, or -EPIPE when from closed. */
static int side_pump(Side *from, Side *to) {
        char buf[65536];

        while (backlog(to) < RELAY_HIGH_WATER) {
                ssize_t n = recv(from->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 0 : -errno;
                }
                if (n == 0)
                        return -EPIPE;
                if (buffer_append(&to->out, buf, (size_t) n) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int on_stall(sd_event_source *es, uint64_t usec, void *userdata) {
        WsRelay *r = userdata;
        log_debug("ws relay: a side took nothing for %us; ending it", (unsigned) (RELAY_STALL_USEC / USEC_PER_SEC));
        relay_end(r);
        return 0;
}

/* Armed while bytes wait for a side; each time that side takes some, it starts over. */
static void stall_watch(WsRelay *r, bool progress) {
        if (backlog(&r->server) == 0 && backlog(&r->client) == 0) {
                r->timer = sd_event_source_disable_unref(r->timer);
                return;
        }
        if (!r->timer) {
                if (sd_event_add_time_relative(r->event, &r->timer, CLOCK_MONOTONIC, RELAY_STALL_USEC, 100 * USEC_PER_MSEC,
                                               on_stall, r) >= 0)
                        (void) sd_event_source_set_description(r->timer, "ws-relay-stall");
        } else if (progress)
                (void) sd_event_source_set_time_relative(r->timer, RELAY_STALL_USEC);
}

static void relay_update(WsRelay *r) {
        Side *sides[2] = { &r->server, &r->client };

        for (size_t i = 0; i < 2; i++) {
                Side *s = sides[i], *other = sides[1 - i];
                uint32_t ev = 0;
                if (!s->io)
                        continue;
                /* Read from a side only while the other's backlog has room. */
                if (backlog(other) < RELAY_HIGH_WATER && !s->eof)
                        ev |= EPOLLIN | EPOLLRDHUP;
                if (backlog(s) > 0)
                        ev |= EPOLLOUT;
                (void) sd_event_source_set_io_events(s->io, ev);
        }
}

static int on_relay_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        WsRelay *r = userdata;
        Side *s = fd == r->server.fd ? &r->server : &r->client, *other = s == &r->server ? &r->client : &r->server;
        size_t waiting = backlog(s);
        int k;

        if (revents & EPOLLOUT && side_flush(s) < 0) {
                relay_end(r);
                return 0;
        }
        if (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                k = side_pump(s, other);
                if (side_flush(other) < 0 || (k < 0 && k != -EPIPE)) {
                        relay_end(r);
                        return 0;
                }
                if (k == -EPIPE)
                        s->eof = true;
        }
        /* One side is done: what it said goes to the other, then both close. */
        if ((r->server.eof && backlog(&r->client) == 0) || (r->client.eof && backlog(&r->server) == 0)) {
                relay_end(r);
                return 0;
        }
        stall_watch(r, backlog(s) < waiting);
        relay_update(r);
        return 0;
}

/* The server's answer to the upgrade: "HTTP/1.1 101" and its head; what follows is frames. */
static int on_upgrade_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        WsRelay *r = userdata;
        char buf[4096];
        const char *end;

        if (revents & EPOLLOUT) {
                int error = 0;
                socklen_t len = sizeof(error);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0 || error != 0) {
                        relay_fail(r, "Session was lost with its server", error == ECONNREFUSED);
                        return 0;
                }
                if (side_flush(&r->server) < 0) {
                        relay_fail(r, "The session's server did not answer", false);
                        return 0;
                }
        }
        if (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n <= 0 || buffer_append(&r->head_in, buf, (size_t) n) < 0) {
                        relay_fail(r, "The session's server did not answer", false);
                        return 0;
                }
                end = memmem(r->head_in.data, r->head_in.size, "\r\n\r\n", 4);
                if (!end) {
                        if (r->head_in.size > RELAY_HEAD_MAX)
                                relay_fail(r, "The session's server did not answer", false);
                        return 0;
                }
                if (r->head_in.size < 12 || strncmp(r->head_in.data, "HTTP/1.1 101", 12) != 0) {
                        log_warning("cluster: the session's server refused the WebSocket: %.*s", (int) strcspn(r->head_in.data, "\r"),
                                    r->head_in.data);
                        relay_fail(r, "The session's server did not answer", false);
                        return 0;
                }
                /* Frames that came with the head are the client's. */
                end += 4;
                (void) buffer_append(&r->client.out, end, r->head_in.size - (size_t) (end - r->head_in.data));
                buffer_done(&r->head_in);
                r->upgraded = true;
                r->timer = sd_event_source_disable_unref(r->timer);
                (void) sd_event_source_set_enabled(r->server.io, SD_EVENT_OFF);
                if (r->ready)
                        TAKE_PTR(r->ready)(r->userdata, NULL, false);
                return 0;
        }
        (void) sd_event_source_set_io_events(es, EPOLLIN | EPOLLRDHUP | (backlog(&r->server) > 0 ? EPOLLOUT : 0));
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        relay_fail(userdata, "The session's server did not answer", false);
        return 0;
}

static void relay_connect_to(WsRelay *r, const struct sockaddr *sa, socklen_t len) {
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;

        if (fd < 0) {
                relay_fail(r, "The session's server did not answer", false);
                return;
        }
        r->server.fd = fd;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
                relay_fail(r, "Session was lost with its server", errno == ECONNREFUSED);
                return;
        }
        if (sd_event_add_io(r->event, &r->server.io, fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP, on_upgrade_io, r) < 0) {
                relay_fail(r, "The session's server did not answer", false);
                return;
        }
        (void) sd_event_source_set_description(r->server.io, "ws-relay-upgrade");
}

static void on_resolved(int error, const struct addrinfo *ai, void *userdata) {
        WsRelay *r = userdata;
        r->query = NULL;
        if (error != 0 || !ai) {
                relay_fail(r, "The session's server did not answer", false);
                return;
        }
        for (const struct addrinfo *a = ai; a; a = a->ai_next)
                if (a->ai_family == AF_INET || a->ai_family == AF_INET6) {
                        struct sockaddr_storage ss = {};
                        memcpy(&ss, a->ai_addr, a->ai_addrlen);
                        ((struct sockaddr_in *) &ss)->sin_port = htons((uint16_t) r->port);   /* same offset in v6 */
                        relay_connect_to(r, (struct sockaddr *) &ss, a->ai_addrlen);
                        return;
                }
        relay_fail(r, "The session's server did not answer", false);
}

int ws_relay_connect(sd_event *event, Resolver *resolver, const char *url, const char *head, const Buffer *first,
                     WsRelayReadyFn ready, void *userdata, WsRelay **ret) {
        struct sockaddr_storage ss;
        socklen_t len;
        bool https = false;
        WsRelay *r;
        int k;

        r = calloc(1, sizeof(WsRelay));
        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(event);
        r->server.fd = r->client.fd = -EBADF;
        r->ready = ready;
        r->userdata = userdata;
        if (!url_host_port(url, &r->host, &r->port, &https) || https) {
                ws_relay_free(r);
                return -EINVAL;
        }
        if (buffer_append(&r->server.out, head, strlen(head)) < 0 ||
            buffer_append(&r->server.out, first->data ?: "", first->size) < 0) {
                ws_relay_free(r);
                return -ENOMEM;
        }
        k = sd_event_add_time_relative(event, &r->timer, CLOCK_MONOTONIC, RELAY_CONNECT_USEC, 10000, on_timeout, r);
        if (k < 0) {
                ws_relay_free(r);
                return k;
        }
        if (egress_address_literal(r->host, r->port, &ss, &len) >= 0)
                relay_connect_to(r, (struct sockaddr *) &ss, len);
        else {
                k = resolver_query(resolver, r->host, on_resolved, r, &r->query);
                if (k < 0) {
                        ws_relay_free(r);
                        return k;
                }
        }
        *ret = r;
        return 0;
}

int ws_relay_attach(WsRelay *r, int client_fd, const void *pending, size_t n, WsRelayEndFn end, void *userdata) {
        int k;

        r->client.fd = client_fd;
        r->end = end;
        r->userdata = userdata;
        if (buffer_append(&r->server.out, pending, n) < 0)
                return -ENOMEM;
        k = sd_event_add_io(r->event, &r->client.io, client_fd, EPOLLIN | EPOLLRDHUP, on_relay_io, r);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(r->client.io, "ws-relay-client");
        r->server.io = sd_event_source_disable_unref(r->server.io);
        k = sd_event_add_io(r->event, &r->server.io, r->server.fd, EPOLLIN | EPOLLRDHUP, on_relay_io, r);
        if (k < 0)
                return k;
        (void) sd_event_source_set_description(r->server.io, "ws-relay-server");
        (void) side_flush(&r->server);
        (void) side_flush(&r->client);
        stall_watch(r, false);
        relay_update(r);
        return 0;
}

WsRelay *ws_relay_free(WsRelay *r) {
        if (!r)
                return NULL;
        resolve_query_cancel(r->query);
        sd_event_source_disable_unref(r->server.io);
        sd_event_source_disable_unref(r->client.io);
        sd_event_source_disable_unref(r->timer);
        sd_event_source_disable_unref(r->defer);
        safe_close(r->server.fd);
        buffer_done(&r->server.out);
        buffer_done(&r->client.out);
        buffer_done(&r->head_in);
        free(r->host);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}
