/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http/request-private.h"
#include "shared/json-util.h"
#include "shared/log.h"

const char *http_request_header(HttpRequest *r, const char *name) {
        return MHD_lookup_connection_value(r->connection, MHD_HEADER_KIND, name);
}

const char *http_request_query(HttpRequest *r, const char *name) {
        return MHD_lookup_connection_value(r->connection, MHD_GET_ARGUMENT_KIND, name);
}

int http_request_body_json(HttpRequest *r, bool allow_empty, json_object **ret) {
        json_object *o = NULL;
        int k;

        if (r->body.size == 0 && allow_empty) {
                *ret = NULL;
                return 0;
        }
        k = json_parse_limited(r->body.data ?: "", r->body.size, JSON_DEPTH_MAX, &o);
        if (k == -ELOOP)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid JSON body: nested deeper than %d levels", JSON_DEPTH_MAX), 1;
        if (k == -E2BIG)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid JSON body: more than %d values or %d objects",
                                        JSON_VALUES_MAX, JSON_OBJECTS_MAX), 1;
        if (k < 0)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid JSON body"), 1;
        *ret = o;
        return 0;
}

int http_reply_response(HttpRequest *r, unsigned status, struct MHD_Response *resp) {
        if (http_request_replied(r)) {
                MHD_destroy_response(resp);
                return -EALREADY;
        }
        /* A reply made while the key is still being looked up (a body too large, too many
         * uploads waiting) ends that wait: it is cancelled. Otherwise the one who waited is
         * the one replying: nothing is outstanding. */
        if (r->state == HTTP_REQUEST_AUTHENTICATING && r->on_abort) {
                HttpRequestAbortFn f = r->on_abort;
                r->on_abort = NULL;
                f(r, r->abort_userdata);
        }
        r->state = status == MHD_HTTP_SWITCHING_PROTOCOLS ? HTTP_REQUEST_UPGRADED : HTTP_REQUEST_REPLIED;
        r->pending = resp;
        r->pending_status = status;
        r->on_abort = NULL;
        r->abort_userdata = NULL;
        http_request_forget_unauthenticated(r);
        if (r->suspended) {
                /* Queued when MHD calls the access handler again after the resume. */
                r->suspended = false;
                MHD_resume_connection(r->connection);
                http_server_kick(r->server);
        }
        return 0;
}

int http_reply_json(HttpRequest *r, unsigned status, json_object *o) {
        struct MHD_Response *resp;
        const char *s;
        size_t len;

        s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        resp = s ? MHD_create_response_from_buffer(len, (void *) s, MHD_RESPMEM_MUST_COPY) : NULL;
        json_object_put(o);
        if (!resp)
                return -ENOMEM;
        MHD_add_response_header(resp, "Content-Type", "application/json");
        return http_reply_response(r, status, resp);
}

int http_reply_error(HttpRequest *r, unsigned status, const char *fmt, ...) {
        char buf[1024];
        json_object *o;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        o = json_object_new_object();
        if (!o || json_add(o, "error", json_object_new_string(buf)) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        return http_reply_json(r, status, o);
}

int http_reply_failure(HttpRequest *r, int error) {
        log_error_errno(error, "%s %s failed: %m", r->method, r->path);
        return http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Internal error");
}

const char *http_request_method(HttpRequest *r) {
        return r->method;
}

const char *http_request_path(HttpRequest *r) {
        return r->path;
}

void http_request_auth_done(HttpRequest *r, const AuthInfo *who) {
        r->auth = *who;
        if (r->state != HTTP_REQUEST_AUTHENTICATING)
                return;
        r->state = HTTP_REQUEST_READING;
        http_request_forget_unauthenticated(r);
        r->on_abort = NULL;
        r->abort_userdata = NULL;
        if (r->suspended) {
                /* It was waiting at its final call: go on to the handler. */
                r->suspended = false;
                MHD_resume_connection(r->connection);
                http_server_kick(r->server);
        }
}

void http_request_auth_settled(HttpRequest *r) {
        r->on_abort = NULL;
        r->abort_userdata = NULL;
}

void http_request_await_auth(HttpRequest *r, HttpRequestAbortFn on_abort, void *userdata) {
        r->state = HTTP_REQUEST_AUTHENTICATING;
        r->on_abort = on_abort;
        r->abort_userdata = userdata;
}

void http_request_suspend(HttpRequest *r, HttpRequestAbortFn on_abort, void *userdata) {
        if (http_request_replied(r))
                return;
        /* Waiting already: the work passed to someone else, who now answers for r. */
        r->on_abort = on_abort;
        r->abort_userdata = userdata;
        if (r->suspended)
                return;
        r->state = HTTP_REQUEST_HANDLING;
        r->suspended = true;
        MHD_suspend_connection(r->connection);
}

int http_reply_stream(HttpRequest *r, unsigned status, struct MHD_Response *resp, HttpRequestAbortFn on_abort,
                      void *userdata) {
        int k = http_reply_response(r, status, resp);
        if (k < 0)
                return k;
        r->on_abort = on_abort;
        r->abort_userdata = userdata;
        return 0;
}

const void *http_request_body(HttpRequest *r, size_t *ret_size) {
        *ret_size = r->body.size;
        return r->body.data ?: "";
}

const char *http_request_param(HttpRequest *r) {
        return r->param;
}

const char *http_request_remote(HttpRequest *r) {
        return r->remote_addr;
}

const AuthInfo *http_request_auth(HttpRequest *r) {
        return &r->auth;
}

HttpServer *http_request_server(HttpRequest *r) {
        return r->server;
}

struct MHD_Connection *http_request_connection(HttpRequest *r) {
        return r->connection;
}
