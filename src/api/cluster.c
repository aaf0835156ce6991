/* SPDX-License-Identifier: MIT */
/* Several servers as one: where a request naming a session is served (core/cluster.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "shared/json-util.h"
#include "shared/log.h"

typedef struct RouteWait {
        HttpRequest *r;
        ApiContext *ctx;
        ClusterCall *call;
        char *id;
        unsigned flags;
        bool forwarded;                 /* the request came from another server */
        ApiHereFn here;
        void *data;
        void (*free_data)(void *);
} RouteWait;

static void route_wait_free(RouteWait *w) {
        if (w->data && w->free_data)
                w->free_data(w->data);
        free(w->id);
        free(w);
}

static void route_gone(HttpRequest *r, void *userdata) {
        RouteWait *w = userdata;
        cluster_call_cancel(w->call);
        route_wait_free(w);
}

static void reply_deleted(HttpRequest *r) {
        json_object *o = json_object_new_object();
        if (!o) {
                (void) http_reply_failure(r, -ENOMEM);
                return;
        }
        json_add(o, "ok", json_object_new_boolean(true));
        (void) http_reply_json(r, MHD_HTTP_OK, o);
}

static void reply_directory_down(RouteWait *w, int error) {
        log_warning("cluster: the session directory did not answer for session %s: %s", w->id, strerror(-error));
        (void) http_reply_error(w->r, MHD_HTTP_SERVICE_UNAVAILABLE, "Session directory unavailable");
}

static void on_forgotten(int error, ClusterPlace place, const char *node, const char *url, const char *tenant,
                         void *userdata) {
        RouteWait *w = userdata;

        w->call = NULL;
        if (error < 0)
                reply_directory_down(w, error);
        else
                reply_deleted(w->r);
        route_wait_free(w);
}

static void on_located(int error, ClusterPlace place, const char *node, const char *url, const char *tenant,
                       void *userdata) {
        RouteWait *w = userdata;
        HttpRequest *r = w->r;
        ApiContext *ctx = w->ctx;
        int k;

        w->call = NULL;
        if (error < 0)
                reply_directory_down(w, error);
        else if (place == CLUSTER_ELSEWHERE && w->forwarded) {
                /* Sent here by a server that thought this one held it; the directory says another
                 * does now. Never passed on twice: as far as the client knows, it is gone. */
                if (w->flags & API_ROUTE_DELETE)
                        reply_deleted(r);
                else
                        (void) api_reply_outcome(r, OUTCOME_SESSION_LOST, NULL);
        } else if (place == CLUSTER_ELSEWHERE) {
                k = api_forward(r, ctx, node, url);
                if (k < 0)
                        (void) api_reply_outcome(r, k, NULL);
        } else if (place == CLUSTER_LOST) {
                if (w->flags & API_ROUTE_DELETE) {
                        /* Answered once the row is gone: the client's next request may reach
                         * another server, which must find the id free. */
                        k = cluster_forget(ctx->m->cluster, w->id, tenant, node, on_forgotten, w, &w->call);
                        if (k >= 0)
                                return;
                        (void) http_reply_failure(r, k);
                } else
                        (void) api_reply_outcome(r, OUTCOME_SESSION_LOST, NULL);
        } else {
                /* Here (held, claimed) or nowhere: the route goes on as on one server; r
                 * waits on, and here() answers it (or waits again with its own hook). */
                ApiHereFn here = w->here;
                void *data = TAKE_PTR(w->data);
                route_wait_free(w);
                http_request_suspend(r, NULL, NULL);
                here(r, ctx, data);
                return;
        }
        route_wait_free(w);
}

int api_session_route(HttpRequest *r, ApiContext *ctx, const char *session_id, unsigned flags, ApiHereFn here, void *data,
                      void (*free_data)(void *)) {
        Manager *m = ctx->m;
        const AuthInfo *who = http_request_auth(r);
        Session *s;
        RouteWait *w;
        int k;

        /* One server, or a session held here: no question. (A request another server forwarded
         * for a session this one does not hold asks too: it may have been lost here.) */
        if (!m->cluster || !session_id || session_lookup(m->sessions, who, session_id, &s) >= 0)
                return 0;
        if (flags & API_ROUTE_PROBE)
                return 1;
        w = calloc(1, sizeof(RouteWait));
        if (!w || !(w->id = strdup(session_id))) {
                free(w);
                if (data && free_data)
                        free_data(data);
                return -ENOMEM;
        }
        w->r = r;
        w->ctx = ctx;
        w->flags = flags;
        w->forwarded = who->forwarded;
        w->here = here;
        w->data = data;
        w->free_data = free_data;
        k = cluster_locate(m->cluster, session_id, who->tenant, who->type == AUTH_MASTER, flags & API_ROUTE_CLAIM, on_located, w,
                           &w->call);
        if (k < 0) {
                route_wait_free(w);
                return k;
        }
        http_request_suspend(r, route_gone, w);
        return 1;
}
