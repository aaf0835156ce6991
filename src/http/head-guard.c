/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "http/head-guard.h"
#include "shared/list.h"
#include "shared/time-util.h"
#include "shared/util.h"

struct HeadGuardConn {
        HeadGuard *guard;
        int fd;
        uint64_t since;                  /* waiting for a head since (CLOCK_MONOTONIC), 0: not */
        HeadGuardConn *prev, *next;      /* the waiting list, oldest first */
};

struct HeadGuard {
        sd_event *event;
        sd_event_source *timer;
        uint64_t deadline_usec;
        unsigned max_waiting;
        unsigned n_waiting;
        HeadGuardConn *first, *last;
        void (*kick)(void *userdata);
        void *userdata;
};

static void unlink_conn(HeadGuard *g, HeadGuardConn *k) {
        if (!k->since)
                return;
        LIST_REMOVE_TAIL(g->first, g->last, k);
        k->since = 0;
        g->n_waiting--;
}

static void rearm(HeadGuard *g) {
        if (!g->first) {
                (void) sd_event_source_set_enabled(g->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(g->timer, g->first->since + g->deadline_usec);
        (void) sd_event_source_set_enabled(g->timer, SD_EVENT_ONESHOT);
}

static void drop(HeadGuard *g, HeadGuardConn *k) {
        unlink_conn(g, k);
        (void) shutdown(k->fd, SHUT_RDWR);
}

static void link_conn(HeadGuard *g, HeadGuardConn *k) {
        if (k->since)
                return;
        if (g->n_waiting >= g->max_waiting && g->first) {
                drop(g, g->first);
                g->kick(g->userdata);
        }
        k->since = MAX(now_usec(CLOCK_MONOTONIC), (uint64_t) 1);
        LIST_APPEND(g->first, g->last, k);
        g->n_waiting++;
        rearm(g);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        HeadGuard *g = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        bool dropped = false;

        while (g->first && g->first->since + g->deadline_usec <= now) {
                drop(g, g->first);
                dropped = true;
        }
        rearm(g);
        if (dropped)
                g->kick(g->userdata);
        return 0;
}

int head_guard_new(HeadGuard **ret, sd_event *event, uint64_t deadline_usec, unsigned max_waiting,
                   void (*kick)(void *userdata), void *userdata) {
        HeadGuard *g = calloc(1, sizeof(HeadGuard));
        int r;

        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(event);
        g->deadline_usec = deadline_usec;
        g->max_waiting = MAX(max_waiting, 1u);
        g->kick = kick;
        g->userdata = userdata;
        r = sd_event_add_time(event, &g->timer, CLOCK_MONOTONIC, 0, 100 * USEC_PER_MSEC, on_timer, g);
        (void) sd_event_source_set_description(g->timer, "http-head-guard");
        if (r < 0) {
                head_guard_free(g);
                return r;
        }
        (void) sd_event_source_set_enabled(g->timer, SD_EVENT_OFF);
        *ret = g;
        return 0;
}

HeadGuard *head_guard_free(HeadGuard *g) {
        if (!g)
                return NULL;
        /* The connections are MHD's; their records go with MHD_CONNECTION_NOTIFY_CLOSED. */
        while (g->first)
                unlink_conn(g, g->first);
        sd_event_source_disable_unref(g->timer);
        sd_event_unref(g->event);
        free(g);
        return NULL;
}

void head_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode toe) {
        HeadGuard *g = cls;
        HeadGuardConn *k = *socket_context;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
                k = calloc(1, sizeof(HeadGuardConn));
                if (!k || !ci) {
                        free(k);
                        return;   /* unguarded; MHD's idle timeout still applies */
                }
                k->guard = g;
                k->fd = ci->connect_fd;
                *socket_context = k;
                link_conn(g, k);
                return;
        }
        if (k) {
                if (k->guard)
                        unlink_conn(k->guard, k);
                free(k);
                *socket_context = NULL;
        }
}

static HeadGuardConn *conn_of(struct MHD_Connection *c) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return ci ? ci->socket_context : NULL;
}

void head_guard_head_done(HeadGuard *g, struct MHD_Connection *c) {
        HeadGuardConn *k = conn_of(c);
        if (k)
                unlink_conn(g, k);
}

void head_guard_await_head(HeadGuard *g, struct MHD_Connection *c) {
        HeadGuardConn *k = conn_of(c);
        if (k)
                link_conn(g, k);
}

unsigned head_guard_n_waiting(HeadGuard *g) {
        return g->n_waiting;
}
