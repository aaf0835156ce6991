/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "auth/auth.h"
#include "http/router.h"
#include "shared/macro.h"
#include "shared/util.h"

typedef struct HttpServer HttpServer;
typedef struct HttpRequest HttpRequest;

typedef struct HttpLimits {
        uint64_t max_body_bytes;          /* 413 above this */
        size_t connection_memory;         /* per-connection header/read buffer; 431 above */
        unsigned connection_timeout_sec;  /* idle connections (slowloris) are closed */
        unsigned max_connections;
        unsigned max_connections_per_ip;
        uint64_t request_head_timeout_usec; /* a request head must be complete within this */
} HttpLimits;

/* Decides whether a request may proceed to its route. Returns 0 to proceed (after filling
 * r->auth), 1 after queueing an error reply itself, or HTTP_AUTH_PENDING when the answer comes
 * later: the body is read meanwhile, and the request then ends with an error reply or goes on
 * with http_request_auth_done(). */
#define HTTP_AUTH_PENDING 2
/* What the bodies of all requests whose key is still being looked up may hold together; past
 * it such uploads are answered 503. */
#define HTTP_UNAUTHENTICATED_BODY_MAX (UINT64_C(32) << 20)
typedef int (*HttpAuthenticator)(HttpRequest *r, const char *authorization, RouteAccess access, void *userdata);

typedef struct HttpServerConfig {
        HttpLimits limits;
        const Route *routes;
        size_t n_routes;
        HttpAuthenticator authenticate;
        void *auth_userdata;
        void *userdata;          /* passed to route handlers */
} HttpServerConfig;

int http_server_new(HttpServer **ret, sd_event *event, int listen_fd, const HttpServerConfig *config);
HttpServer *http_server_free(HttpServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpServer *, http_server_free);
/* Stops accepting new connections; open ones are served to the end. */
void http_server_quiesce(HttpServer *s);
unsigned http_server_n_requests(HttpServer *s);
/* Open connections, upgraded ones included. */
unsigned http_server_n_connections(HttpServer *s);
/* Runs MHD once more from the loop, after resuming a connection or changing its state. */
void http_server_kick(HttpServer *s);

typedef void (*HttpRequestAbortFn)(HttpRequest *r, void *userdata);

struct HttpRequest {
        HttpServer *server;
        struct MHD_Connection *connection;
        char *method;
        char *path;
        const Route *route;
        int lookup;                   /* router result: 0, -ENOENT, -EOPNOTSUPP */
        char *param;                  /* the ":id" segment of the route, if any */
        Buffer body;
        bool body_too_large;
        bool dispatched;
        bool suspended;
        bool replied;
        bool auth_pending;
        bool checked;                 /* routing and size checks done (after authentication) */
        bool close_connection;        /* answer with "Connection: close" */
        bool upgraded;                /* answered 101: the socket left HTTP */
        uint64_t unauthenticated_bytes; /* of body, counted while the key is looked up */
        AuthInfo auth;
        char remote_addr[64];
        struct MHD_Response *pending;  /* reply made while suspended, queued on resume */
        unsigned pending_status;
        /* Called if the request goes away (client gone, server stopping) while work for it is
         * still outstanding; the owner must forget r. */
        HttpRequestAbortFn on_abort;
        void *abort_userdata;
};

const char *http_request_header(HttpRequest *r, const char *name);
const char *http_request_query(HttpRequest *r, const char *name);
/* Parses the body as a JSON object/value with the depth limit. Replies 400 itself and returns
 * > 0 when it is not valid JSON. */
int http_request_body_json(HttpRequest *r, bool allow_empty, json_object **ret);

/* Replies; usable synchronously in a handler or later while suspended. Consume o. */
int http_reply_json(HttpRequest *r, unsigned status, json_object *o);
int http_reply_error(HttpRequest *r, unsigned status, const char *fmt, ...) _printf_(3, 4);
int http_reply_response(HttpRequest *r, unsigned status, struct MHD_Response *resp);
/* A handler failed (a negative errno): logged once here, answered 500. Documented outcomes are
 * the transport's to answer (api/outcome-http.c); no errno means anything else. */
int http_reply_failure(HttpRequest *r, int error);
const char *http_request_method(HttpRequest *r);
const char *http_request_path(HttpRequest *r);

void http_request_suspend(HttpRequest *r, HttpRequestAbortFn on_abort, void *userdata);
/* The request's body no longer counts as unauthenticated (its key is known). */
void http_request_forget_unauthenticated(HttpRequest *r);
/* Ends a pending authentication successfully (r->auth filled): the request goes on. */
void http_request_auth_done(HttpRequest *r);
