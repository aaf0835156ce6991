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

/* Decides whether a request may proceed to its route. Returns 0 to proceed (after
 * http_request_auth_done()), 1 after queueing an error reply itself, or HTTP_AUTH_PENDING when the answer comes
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
sd_event *http_server_event(HttpServer *s);
/* Runs MHD once more from the loop, after resuming a connection or changing its state. */
void http_server_kick(HttpServer *s);

typedef void (*HttpRequestAbortFn)(HttpRequest *r, void *userdata);

/* A request is opaque outside http/: what a route handler may read of it. */
const char *http_request_method(HttpRequest *r);
const char *http_request_path(HttpRequest *r);
/* The ":id" segment of the route, if any. */
const char *http_request_param(HttpRequest *r);
const char *http_request_remote(HttpRequest *r);
/* Who is asking (filled by authentication before the handler runs). */
const AuthInfo *http_request_auth(HttpRequest *r);
HttpServer *http_request_server(HttpRequest *r);
/* For streaming responses, which suspend and resume MHD themselves. */
struct MHD_Connection *http_request_connection(HttpRequest *r);

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

/* The one way to wait: the handler's work goes on after it returns, and the request waits
 * for a reply. If the request goes away first (client gone, server stopping), on_abort is
 * called once and the owner must forget r and cancel its work; after a reply it never is. */
void http_request_suspend(HttpRequest *r, HttpRequestAbortFn on_abort, void *userdata);
/* (Called again while waiting, it passes the wait to a new owner: on_abort is replaced.) */
/* A streaming reply (SSE): like http_reply_response(), with on_abort called if the request
 * goes away while the stream is still being written. */
int http_reply_stream(HttpRequest *r, unsigned status, struct MHD_Response *resp, HttpRequestAbortFn on_abort,
                      void *userdata);
/* A streamed reply (SSE, a forwarded answer) over http_reply_stream(): the producer writes,
 * the client takes at its pace. */
typedef struct HttpStream HttpStream;
typedef struct HttpStreamOps {
        /* What was queued past the high water mark (http_stream_write() returned 1) has been
         * taken: the producer may go on. */
        void (*drained)(void *userdata);
        /* The client went away before http_stream_end(): stop producing. At most once, never
         * after http_stream_release(). */
        void (*gone)(void *userdata);
} HttpStreamOps;
/* headers: name, value pairs, NULL-terminated (or NULL). */
int http_stream_start(HttpRequest *r, unsigned status, const char *const *headers, const HttpStreamOps *ops, void *userdata,
                      HttpStream **ret);
/* Queues data: 0, or 1 when more than the high water mark waits (pause until drained()), or
 * -EPIPE when nobody will read it. */
int http_stream_write(HttpStream *s, const void *p, size_t n);
size_t http_stream_pending(HttpStream *s);
/* The body ends after what is queued: normally (ok), or with the connection broken. */
void http_stream_end(HttpStream *s, bool ok);
/* The producer lets go (after end, or after gone); the stream goes when MHD is done with it. */
void http_stream_release(HttpStream *s);

/* For an authenticator that answered HTTP_AUTH_PENDING: on_abort is called if the request goes
 * away before http_request_auth_done() or a reply. */
void http_request_await_auth(HttpRequest *r, HttpRequestAbortFn on_abort, void *userdata);
/* The authenticator's answer came (its callback runs): the abort hook is forgotten before the
 * callback frees what it pointed at; then it replies or calls http_request_auth_done(). A
 * reply made by anyone else while the key is being looked up calls on_abort first. */
void http_request_auth_settled(HttpRequest *r);
/* The body as read (bounded by the route's limit), for passing on unparsed. */
const void *http_request_body(HttpRequest *r, size_t *ret_size);
/* The request's body no longer counts as unauthenticated (its key is known). */
void http_request_forget_unauthenticated(HttpRequest *r);
/* Ends an authentication successfully: the request goes on as who. */
void http_request_auth_done(HttpRequest *r, const AuthInfo *who);
