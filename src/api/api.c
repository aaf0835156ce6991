/* SPDX-License-Identifier: MIT */
/* The HTTP transport's set-up: the server, its routes, and authentication of each request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "shared/log.h"
#include "shared/time-util.h"

typedef struct AuthWait {
        HttpRequest *r;
        RouteAccess access;
        ManagerCall *call;
        Manager *m;
} AuthWait;

static void auth_failure(Manager *m, HttpRequest *r, const char *reason) {
        manager_auth_failure(m, http_request_remote(r), reason, http_request_method(r), http_request_path(r));
}

static const char *failure_reason(Outcome o) {
        switch (o) {
        case OUTCOME_AUTH_UNAVAILABLE:
                return "unavailable";
        case OUTCOME_KEY_REVOKED:
                return "revoked";
        case OUTCOME_KEY_EXPIRED:
                return "expired";
        default:
                return "invalid";
        }
}

/* A key is refused, or good for a route it may not use. */
static int auth_refuse(Manager *m, HttpRequest *r, Outcome o) {
        auth_failure(m, r, failure_reason(o));
        return api_reply_outcome(r, (int) o, NULL);
}

static void auth_wait_gone(HttpRequest *r, void *userdata) {
        AuthWait *w = userdata;
        manager_call_cancel(w->call);
        free(w);
}

static void on_authenticated(Outcome outcome, const AuthInfo *who, void *userdata) {
        AuthWait *w = userdata;
        HttpRequest *r = w->r;
        RouteAccess access = w->access;
        Manager *m = w->m;

        http_request_auth_settled(r);
        free(w);
        if (outcome != OUTCOME_OK)
                (void) auth_refuse(m, r, outcome);
        else if (access == ROUTE_MASTER) {
                auth_failure(m, r, "master-required");
                (void) http_reply_error(r, MHD_HTTP_FORBIDDEN, "Master key required for this operation");
        } else
                http_request_auth_done(r, who);
}

const char *api_request_remote(HttpRequest *r) {
        const char *client = http_request_auth(r)->forwarded ? http_request_header(r, "X-Isol8-Client") : NULL;
        return client ?: http_request_remote(r);
}

/* A request another server of the cluster forwards for its client: its signature instead of a
 * key. Never for the master's routes (nothing forwards them). */
static int authenticate_forwarded(ApiContext *ctx, HttpRequest *r, const char *stamp, RouteAccess access) {
        AuthInfo who;
        int k;

        k = manager_cluster_authenticate(ctx->m, stamp, http_request_header(r, "X-Isol8-Identity"),
                                         http_request_header(r, "X-Isol8-Client"), http_request_method(r),
                                         http_request_path(r), &who);
        if (k == 0 && access == ROUTE_MASTER)
                k = OUTCOME_KEY_UNKNOWN;
        if (k != 0) {
                auth_failure(ctx->m, r, "cluster-signature");
                (void) http_reply_error(r, MHD_HTTP_UNAUTHORIZED, "Invalid cluster signature");
                return 1;
        }
        http_request_auth_done(r, &who);
        return 0;
}

/* The order of API.md: the master key first, then the key store if there is one, else 403. */
static int authenticate(HttpRequest *r, const char *header, RouteAccess access, void *userdata) {
        ApiContext *ctx = userdata;
        const char *token, *stamp;
        AuthInfo who;
        AuthWait *w;
        size_t len;
        int k;

        stamp = http_request_header(r, "X-Isol8-Cluster");
        if (stamp)
                return authenticate_forwarded(ctx, r, stamp, access);
        k = auth_parse_bearer(header, &token, &len);
        if (k == -ENOKEY) {
                auth_failure(ctx->m, r, "missing");
                http_reply_error(r, MHD_HTTP_UNAUTHORIZED, "Missing Authorization header");
                return 1;
        }
        if (k < 0)
                return auth_refuse(ctx->m, r, OUTCOME_KEY_UNKNOWN), 1;
        w = calloc(1, sizeof(AuthWait));
        if (!w) {
                http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
                return 1;
        }
        w->r = r;
        w->access = access;
        w->m = ctx->m;
        k = manager_authenticate(ctx->m, token, len, &who, on_authenticated, w, &w->call);
        if (k == MANAGER_PENDING) {
                http_request_await_auth(r, auth_wait_gone, w);
                return HTTP_AUTH_PENDING;
        }
        free(w);
        if (k == 0) {
                http_request_auth_done(r, &who);
                return 0;
        }
        if (k < 0) {
                (void) api_reply_outcome(r, k, NULL);
                return 1;
        }
        return auth_refuse(ctx->m, r, (Outcome) k), 1;
}

static unsigned transport_n_requests(void *userdata) {
        return http_server_n_requests(((ApiContext *) userdata)->http);
}

static unsigned transport_n_connections(void *userdata) {
        return http_server_n_connections(((ApiContext *) userdata)->http);
}

static void transport_quiesce(void *userdata) {
        http_server_quiesce(((ApiContext *) userdata)->http);
}

static const TransportOps api_transport_ops = {
        .n_requests = transport_n_requests,
        .n_connections = transport_n_connections,
        .quiesce = transport_quiesce,
};

ApiContext *api_free(ApiContext *ctx) {
        if (!ctx)
                return NULL;
        manager_remove_transport(ctx->m, ctx);
        http_server_free(ctx->http);
        curl_loop_free(ctx->curl);
        free(ctx);
        return NULL;
}

int api_new(ApiContext **ret, Manager *m, int listen_fd) {
        _cleanup_(api_freep) ApiContext *ctx = NULL;
        _cleanup_close_ int fd = listen_fd;
        const Config *c = &m->config;
        size_t n_routes;
        int r;

        ctx = calloc(1, sizeof(ApiContext));
        if (!ctx)
                return -ENOMEM;
        ctx->m = m;
        ctx->event = m->event;
        ctx->sse_keepalive_usec = MAX(c->sse_keepalive_ms, (uint64_t) 100) * USEC_PER_MSEC;

        HttpServerConfig hc = {
                .limits = {
                        .max_body_bytes = c->limits.body_bytes,
                        .connection_memory = (size_t) c->http_max_header_bytes,
                        .connection_timeout_sec = (unsigned) c->http_connection_timeout_sec,
                        .max_connections = (unsigned) c->http_max_connections,
                        .max_connections_per_ip = (unsigned) MIN(c->http_max_connections_per_ip, c->http_max_connections),
                        .request_head_timeout_usec = c->http_request_head_timeout_ms * USEC_PER_MSEC,
                },
                .routes = api_routes(&n_routes),
                .n_routes = n_routes,
                .authenticate = authenticate,
                .auth_userdata = ctx,
                .userdata = ctx,
        };
        r = http_server_new(&ctx->http, m->event, fd, &hc);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        r = manager_add_transport(m, &api_transport_ops, ctx);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ctx);
        return 0;
}
