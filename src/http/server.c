/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "http/head-guard.h"
#include "http/request-private.h"
#include "shared/log.h"
#include "shared/util.h"

struct HttpServer {
        sd_event *event;
        struct MHD_Daemon *mhd;
        sd_event_source *io_source;
        sd_event_source *timer_source;
        sd_event_source *defer_source;
        HttpServerConfig config;
        HeadGuard *heads;        /* deadlines for request heads (slowloris) */
        uint64_t unauthenticated_body_bytes;   /* held by requests whose key is being looked up */
        int listen_fd;           /* owned only after quiescing */
        bool quiesced;
        unsigned n_requests;
        unsigned zero_timeouts;         /* "run again at once" answers in a row without io */
};

static void http_server_rearm(HttpServer *s) {
        MHD_UNSIGNED_LONG_LONG ms;
        bool timeout = MHD_get_timeout(s->mhd, &ms) == MHD_YES;

        if (timeout && ms == 0 && s->zero_timeouts < 8) {
                /* MHD has work now (a resumed connection, the end of a streamed reply): the next
                 * loop iteration, not a timer's millisecond of slack. Bounded, so that a
                 * connection that cannot progress does not spin the loop. */
                s->zero_timeouts++;
                (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);
                (void) sd_event_source_set_enabled(s->defer_source, SD_EVENT_ONESHOT);
                return;
        }
        s->zero_timeouts = 0;
        if (timeout) {
                /* Relative, as MHD means it; an absolute time here makes the loop spin. */
                (void) sd_event_source_set_time_relative(s->timer_source, ms * 1000);
                (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);
}

static void http_server_run(HttpServer *s) {
        (void) MHD_run(s->mhd);
        http_server_rearm(s);
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        HttpServer *s = userdata;
        s->zero_timeouts = 0;
        http_server_run(s);
        return 0;
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        http_server_run(userdata);
        return 0;
}

static int on_defer(sd_event_source *es, void *userdata) {
        http_server_run(userdata);
        return 0;
}

sd_event *http_server_event(HttpServer *s) {
        return s->event;
}

void http_server_kick(HttpServer *s) {
        (void) sd_event_source_set_enabled(s->defer_source, SD_EVENT_ONESHOT);
}

static void kick(void *userdata) {
        http_server_kick(userdata);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) _printf_(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap) {
        char buf[512];
        vsnprintf(buf, sizeof(buf), fmt, ap);
        buf[strcspn(buf, "\n")] = 0;
        log_debug("http: %s", buf);
}

void http_request_forget_unauthenticated(HttpRequest *r) {
        r->server->unauthenticated_body_bytes -= r->unauthenticated_bytes;
        r->unauthenticated_bytes = 0;
}

static void request_forget_body(HttpRequest *r) {
        http_request_forget_unauthenticated(r);
        buffer_done(&r->body);
}

static HttpRequest *request_free(HttpRequest *r) {
        if (!r)
                return NULL;
        http_request_forget_unauthenticated(r);
        if (r->on_abort) {
                HttpRequestAbortFn f = r->on_abort;
                r->on_abort = NULL;
                f(r, r->abort_userdata);
        }
        if (r->pending)
                MHD_destroy_response(r->pending);
        buffer_done(&r->body);
        free(r->method);
        free(r->path);
        free(r->param);
        free(r);
        return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        HttpServer *s = cls;
        HttpRequest *r = *con_cls;

        if (!r)
                return;
        /* A kept-alive connection has a deadline for its next request head too. */
        if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && r->state != HTTP_REQUEST_UPGRADED)
                head_guard_await_head(s->heads, c);
        *con_cls = NULL;
        request_free(r);
        s->n_requests--;
}

static void fill_remote_addr(HttpRequest *r) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;

        if (!sa)
                return;
        if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, r->remote_addr, sizeof(r->remote_addr));
        else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, r->remote_addr, sizeof(r->remote_addr));
}

static enum MHD_Result queue_pending(HttpRequest *r) {
        struct MHD_Response *resp = TAKE_PTR(r->pending);
        enum MHD_Result m;

        if (r->close_connection)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        m = MHD_queue_response(r->connection, r->pending_status, resp);
        MHD_destroy_response(resp);
        return m;
}

typedef struct HeadCheck {
        unsigned content_length;
        unsigned transfer_encoding;
        bool nul;
} HeadCheck;

static enum MHD_Result check_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                    const char *value, size_t value_size) {
        HeadCheck *h = cls;
        if (strcasecmp(key, "Content-Length") == 0)
                h->content_length++;
        else if (strcasecmp(key, "Transfer-Encoding") == 0)
                h->transfer_encoding++;
        if (strlen(key) != key_size || (value && strlen(value) != value_size))
                h->nul = true;
        return MHD_YES;
}

/* Request heads that proxies and this server could read differently (request smuggling) are
 * refused before anything else, and the connection is closed after the answer. */
static const char *request_head_problem(struct MHD_Connection *c) {
        HeadCheck h = {};
        (void) MHD_get_connection_values_n(c, MHD_HEADER_KIND, check_header, &h);
        if (h.nul)
                return "Invalid request: a header contains a NUL byte";
        if (h.content_length > 1)
                return "Invalid request: more than one Content-Length header";
        if (h.content_length > 0 && h.transfer_encoding > 0)
                return "Invalid request: both Content-Length and Transfer-Encoding";
        if (h.transfer_encoding > 1)
                return "Invalid request: more than one Transfer-Encoding header";
        return NULL;
}

/* 404 and 405, once the caller is known to be allowed to learn them. */
static void route_checks(HttpRequest *r) {
        r->checked = true;
        if (r->lookup == -ENOENT)
                http_reply_error(r, MHD_HTTP_NOT_FOUND, "Not found");
        else if (r->lookup < 0)
                http_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed");
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
        HttpServer *s = cls;
        HttpRequest *r = *con_cls;
        int k;

        if (!r) {
                const Route *route = NULL;
                const char *cl, *problem;

                r = calloc(1, sizeof(HttpRequest));
                if (!r)
                        return MHD_NO;
                r->server = s;
                r->connection = c;
                r->state = HTTP_REQUEST_READING;
                r->method = strdup(method);
                r->path = strdup(url);
                *con_cls = r;
                s->n_requests++;
                if (!r->method || !r->path)
                        return MHD_NO;
                fill_remote_addr(r);
                head_guard_head_done(s->heads, c);
                problem = request_head_problem(c);
                if (problem) {
                        r->close_connection = true;
                        http_reply_error(r, MHD_HTTP_BAD_REQUEST, "%s", problem);
                        return queue_pending(r);
                }

                r->lookup = router_lookup(s->config.routes, s->config.n_routes, method, url, &route, &r->param);
                r->route = route;
                if (r->lookup < 0 || route->access != ROUTE_PUBLIC) {
                        /* Unknown paths answer 404 only after authentication, as API.md says. */
                        RouteAccess access = r->lookup < 0 ? ROUTE_ANY_KEY : route->access;
                        k = s->config.authenticate(r, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
                                                   access, s->config.auth_userdata);
                        if (k == HTTP_AUTH_PENDING)
                                r->state = HTTP_REQUEST_AUTHENTICATING;
                        else if (k > 0)
                                goto flush;
                }
                if ((cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length"))) {
                        uint64_t v;
                        if (safe_atou64(cl, &v) >= 0 && v > s->config.limits.max_body_bytes)
                                http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "Request body too large (limit %" PRIu64 " bytes)",
                                                 s->config.limits.max_body_bytes);
                }
                if (r->state == HTTP_REQUEST_READING)
                        route_checks(r);
                goto flush;
        }

        if (*upload_data_size > 0) {
                if (r->state == HTTP_REQUEST_AUTHENTICATING && !r->body_too_large &&
                    s->unauthenticated_body_bytes + *upload_data_size > HTTP_UNAUTHENTICATED_BODY_MAX) {
                        /* Bodies whose key is not known yet are bounded all together: a slow or
                         * unreachable key store cannot make us hold gigabytes of them. */
                        request_forget_body(r);
                        http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                         "Too many uploads are waiting for their key to be checked; try again");
                }
                if (!http_request_replied(r) && !r->body_too_large) {
                        if (r->body.size + *upload_data_size > s->config.limits.max_body_bytes) {
                                r->body_too_large = true;
                                request_forget_body(r);
                        } else if (buffer_append(&r->body, upload_data, *upload_data_size) < 0)
                                return MHD_NO;
                        else if (r->state == HTTP_REQUEST_AUTHENTICATING) {
                                s->unauthenticated_body_bytes += *upload_data_size;
                                r->unauthenticated_bytes += *upload_data_size;
                        }
                }
                *upload_data_size = 0;
                /* Never answer in the middle of an upload: a reply made meanwhile (a key that
                 * failed) waits for the final call. */
                return MHD_YES;
        }

        /* The final call: the whole body is here. */
        if (http_request_replied(r))
                goto flush;
        if (r->body_too_large) {
                http_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "Request body too large (limit %" PRIu64 " bytes)",
                                 s->config.limits.max_body_bytes);
                goto flush;
        }
        if (r->state == HTTP_REQUEST_AUTHENTICATING) {
                /* The key store has not answered yet: wait for it out of MHD's loop. */
                r->suspended = true;
                MHD_suspend_connection(c);
                return MHD_YES;
        }
        if (!r->checked) {
                route_checks(r);
                if (http_request_replied(r))
                        goto flush;
        }
        if (r->state == HTTP_REQUEST_READING) {
                r->state = HTTP_REQUEST_HANDLING;
                k = r->route->handler(r, s->config.userdata);
                if (k < 0 && !http_request_replied(r) && !r->suspended)
                        http_reply_failure(r, k);
                else if (!http_request_replied(r) && !r->suspended && !(r->route->flags & ROUTE_UPGRADE))
                        http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal error");
        }

flush:
        if (r->pending && !r->suspended)
                return queue_pending(r);
        return MHD_YES;
}

int http_server_new(HttpServer **ret, sd_event *event, int listen_fd, const HttpServerConfig *config) {
        _cleanup_(http_server_freep) HttpServer *s = NULL;
        const union MHD_DaemonInfo *info;
        int r;

        s = calloc(1, sizeof(HttpServer));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->config = *config;
        s->listen_fd = -EBADF;

        /* Up to 90% of the connections may be waiting for their request head; past that the
         * oldest such one makes room, so a client that sends its head at once always gets in. */
        r = head_guard_new(&s->heads, event, config->limits.request_head_timeout_usec,
                           config->limits.max_connections - config->limits.max_connections / 10, kick, s);
        if (r < 0)
                return r;
        s->mhd = MHD_start_daemon(
                        MHD_USE_EPOLL | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG,
                        0, NULL, NULL, on_access, s,
                        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                        MHD_OPTION_LISTEN_SOCKET, listen_fd,
                        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                        MHD_OPTION_NOTIFY_CONNECTION, head_guard_notify, s->heads,
                        MHD_OPTION_CONNECTION_LIMIT, config->limits.max_connections,
                        MHD_OPTION_PER_IP_CONNECTION_LIMIT, config->limits.max_connections_per_ip,
                        MHD_OPTION_CONNECTION_TIMEOUT, config->limits.connection_timeout_sec,
                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, config->limits.connection_memory,
                        MHD_OPTION_END);
        if (!s->mhd)
                return log_error_errno(EIO, "Failed to start the HTTP engine (libmicrohttpd).");

        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return -EIO;
        r = sd_event_add_io(event, &s->io_source, info->epoll_fd, EPOLLIN, on_io, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->io_source, "http-epoll");
        r = sd_event_add_time_relative(event, &s->timer_source, CLOCK_MONOTONIC, 0, 1000, on_timer, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->timer_source, "http-timer");
        (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);
        r = sd_event_add_defer(event, &s->defer_source, on_defer, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->defer_source, "http-kick");
        (void) sd_event_source_set_enabled(s->defer_source, SD_EVENT_OFF);
        http_server_rearm(s);

        *ret = TAKE_PTR(s);
        return 0;
}

HttpServer *http_server_free(HttpServer *s) {
        if (!s)
                return NULL;
        if (s->mhd)
                MHD_stop_daemon(s->mhd);
        head_guard_free(s->heads);
        sd_event_source_disable_unref(s->io_source);
        sd_event_source_disable_unref(s->timer_source);
        sd_event_source_disable_unref(s->defer_source);
        safe_close(s->listen_fd);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void http_server_quiesce(HttpServer *s) {
        MHD_socket fd;

        if (s->quiesced)
                return;
        s->quiesced = true;
        fd = MHD_quiesce_daemon(s->mhd);
        if (fd != MHD_INVALID_SOCKET)
                s->listen_fd = fd;
        http_server_kick(s);
}

unsigned http_server_n_requests(HttpServer *s) {
        return s->n_requests;
}

unsigned http_server_n_connections(HttpServer *s) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        return info ? info->num_connections : 0;
}
