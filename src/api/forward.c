/* SPDX-License-Identifier: MIT */
/* Forwarding a request to the server of the cluster that holds its session: libcurl's multi
 * interface on the loop (core/curl.h), the client's body passed on as read, the answer
 * streamed back as it comes (SSE included) with the client's pace holding the transfer back
 * (a paused transfer, not a growing buffer). The other server is told who the client is by a
 * signature over cluster.secret (core/keys.c); the client's key is not passed on. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/curl.h"
#include "shared/log.h"
#include "shared/util.h"

#define FORWARD_CONNECT_TIMEOUT_MS 2000L

typedef struct Forward {
        ApiContext *ctx;
        HttpRequest *r;                 /* until the answer starts, or the client goes */
        HttpStream *stream;             /* once the answer started */
        CURL *easy;
        struct curl_slist *headers;
        char *node;
        char errbuf[CURL_ERROR_SIZE];
        long status;
        char content_type[128];
        char cache_control[64];
        bool paused;
} Forward;

static void forward_stop(Forward *f) {
        if (f->easy) {
                curl_loop_remove(f->ctx->curl, f->easy);
                sym_curl_easy_cleanup(f->easy);
                f->easy = NULL;
        }
        if (f->headers)
                sym_curl_slist_free_all(f->headers);
        f->headers = NULL;
}

static void forward_free(Forward *f) {
        forward_stop(f);
        http_stream_release(f->stream);
        free(f->node);
        free(f);
}

static void on_stream_drained(void *userdata) {
        Forward *f = userdata;
        if (f->paused && f->easy) {
                f->paused = false;
                (void) sym_curl_easy_pause(f->easy, CURLPAUSE_CONT);
                curl_loop_kick(f->ctx->curl);
        }
}

static void on_stream_gone(void *userdata) {
        forward_free(userdata);
}

static void on_request_gone(HttpRequest *r, void *userdata) {
        forward_free(userdata);
}

/* The other server's head is in: the client's answer starts with its status. */
static int start_answer(Forward *f) {
        static const HttpStreamOps ops = { .drained = on_stream_drained, .gone = on_stream_gone };
        const char *headers[7] = {};
        size_t n = 0;
        HttpRequest *r = TAKE_PTR(f->r);

        if (f->content_type[0]) {
                headers[n++] = "Content-Type";
                headers[n++] = f->content_type;
        }
        if (f->cache_control[0]) {
                headers[n++] = "Cache-Control";
                headers[n++] = f->cache_control;
                headers[n++] = "X-Accel-Buffering";
                headers[n++] = "no";
        }
        return http_stream_start(r, (unsigned) f->status, headers, &ops, f, &f->stream);
}

static void copy_header_value(char *dst, size_t size, const char *v, size_t len) {
        while (len > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                len--;
        }
        while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
                len--;
        snprintf(dst, size, "%.*s", (int) MIN(len, size - 1), v);
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *userdata) {
        Forward *f = userdata;
        size_t n = size * nmemb;

        if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
                f->content_type[0] = f->cache_control[0] = 0;
                return n;
        }
        if (n > 13 && strncasecmp(p, "Content-Type:", 13) == 0)
                copy_header_value(f->content_type, sizeof(f->content_type), p + 13, n - 13);
        else if (n > 14 && strncasecmp(p, "Cache-Control:", 14) == 0)
                copy_header_value(f->cache_control, sizeof(f->cache_control), p + 14, n - 14);
        else if ((n == 2 && p[0] == '\r') || (n == 1 && p[0] == '\n')) {
                sym_curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
                if (f->status >= 200 && f->r && start_answer(f) < 0)
                        return 0;   /* ends the transfer */
        }
        return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *userdata) {
        Forward *f = userdata;
        size_t n = size * nmemb;
        int k;

        if (!f->stream)
                return 0;
        /* Past the high water the bytes stay with libcurl until the client took some. */
        if (http_stream_pending(f->stream) > (1u << 20)) {
                f->paused = true;
                return CURL_WRITEFUNC_PAUSE;
        }
        k = http_stream_write(f->stream, p, n);
        if (k < 0)
                return 0;
        if (k > 0)
                f->paused = true;   /* drained() lifts it */
        return n;
}

static void forward_done(CURL *easy, CURLcode result, void *userdata) {
        Forward *f = NULL;
        HttpRequest *r;

        sym_curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &f);
        if (!f)
                return;
        r = f->r;
        if (r) {
                /* No answer came: the server went away (or never answered). */
                f->r = NULL;
                forward_stop(f);
                if (result == CURLE_COULDNT_CONNECT) {
                        log_info("cluster: node %s refuses connections; its sessions are lost", f->node);
                        (void) api_reply_outcome(r, OUTCOME_SESSION_LOST, NULL);
                } else {
                        log_warning("cluster: forwarding to node %s failed: %s", f->node,
                                    f->errbuf[0] ? f->errbuf : sym_curl_easy_strerror(result));
                        (void) api_reply_outcome(r, OUTCOME_NODE_UNREACHABLE, NULL);
                }
                forward_free(f);
                return;
        }
        forward_stop(f);
        /* Cut short (the other server died mid-answer): the client sees a broken body. */
        if (f->stream)
                http_stream_end(f->stream, result == CURLE_OK);
        forward_free(f);
}

static int header_add(Forward *f, const char *name, const char *value) {
        _cleanup_free_ char *line = NULL;
        struct curl_slist *l;

        if (asprintf(&line, "%s: %s", name, value) < 0)
                return -ENOMEM;
        l = sym_curl_slist_append(f->headers, line);
        if (!l)
                return -ENOMEM;
        f->headers = l;
        return 0;
}

typedef struct QueryWalk {
        Forward *f;
        Buffer *out;
        int error;
} QueryWalk;

static enum MHD_Result on_argument(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        QueryWalk *w = cls;
        char *k = sym_curl_easy_escape(w->f->easy, key, 0), *v = value ? sym_curl_easy_escape(w->f->easy, value, 0) : NULL;

        if (!k || (value && !v) || buffer_append(w->out, w->out->size > 0 ? "&" : "?", 1) < 0 ||
            buffer_append(w->out, k, strlen(k)) < 0 || (v && (buffer_append(w->out, "=", 1) < 0 || buffer_append(w->out, v, strlen(v)) < 0)))
                w->error = -ENOMEM;
        sym_curl_free(k);
        sym_curl_free(v);
        return w->error < 0 ? MHD_NO : MHD_YES;
}

static int append_query(Forward *f, HttpRequest *r, char **url) {
        Buffer q = {};
        QueryWalk w = { .f = f, .out = &q };
        char *joined;

        MHD_get_connection_values(http_request_connection(r), MHD_GET_ARGUMENT_KIND, on_argument, &w);
        if (w.error < 0) {
                buffer_done(&q);
                return w.error;
        }
        if (asprintf(&joined, "%s%.*s", *url, (int) q.size, q.data ?: "") < 0) {
                buffer_done(&q);
                return -ENOMEM;
        }
        buffer_done(&q);
        free(*url);
        *url = joined;
        return 0;
}

int api_forward(HttpRequest *r, ApiContext *ctx, const char *node, const char *base_url) {
        Manager *m = ctx->m;
        const AuthInfo *who = http_request_auth(r);
        const char *method = http_request_method(r), *path = http_request_path(r), *remote = api_request_remote(r);
        _cleanup_free_ char *url = NULL;
        ClusterSignature sig;
        const void *body;
        size_t body_size;
        Forward *f;
        int k;

        if (!ctx->curl) {
                k = curl_load("cluster");
                if (k >= 0)
                        k = curl_loop_new(ctx->event, "cluster-forward", forward_done, ctx, &ctx->curl);
                if (k < 0)
                        return k;
        }
        k = manager_cluster_sign(m, method, path, who, remote, &sig);
        if (k < 0)
                return k;
        if (asprintf(&url, "%s%s", base_url, path) < 0)
                return -ENOMEM;
        f = calloc(1, sizeof(Forward));
        if (!f)
                return -ENOMEM;
        f->ctx = ctx;
        f->r = r;
        f->node = strdup(node);
        f->easy = sym_curl_easy_init();
        if (!f->node || !f->easy) {
                forward_free(f);
                return -ENOMEM;
        }
        k = append_query(f, r, &url);
        if (k >= 0)
                k = header_add(f, "X-Isol8-Cluster", sig.stamp);
        if (k >= 0)
                k = header_add(f, "X-Isol8-Identity", sig.identity);
        if (k >= 0)
                k = header_add(f, "X-Isol8-Client", remote);
        if (k >= 0 && http_request_header(r, "Content-Type"))
                k = header_add(f, "Content-Type", http_request_header(r, "Content-Type"));
        if (k >= 0 && http_request_header(r, "Accept"))
                k = header_add(f, "Accept", http_request_header(r, "Accept"));
        if (k >= 0)
                k = header_add(f, "Expect", "");
        if (k < 0) {
                forward_free(f);
                return k;
        }
        body = http_request_body(r, &body_size);
        sym_curl_easy_setopt(f->easy, CURLOPT_URL, url);
        sym_curl_easy_setopt(f->easy, CURLOPT_PRIVATE, f);
        sym_curl_easy_setopt(f->easy, CURLOPT_CUSTOMREQUEST, method);
        if (!streq(method, "GET") && !streq(method, "DELETE")) {
                /* The body is r's, and r lives as long as the transfer does (its end stops it). */
                sym_curl_easy_setopt(f->easy, CURLOPT_POSTFIELDS, body);
                sym_curl_easy_setopt(f->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_size);
        }
        sym_curl_easy_setopt(f->easy, CURLOPT_HTTPHEADER, f->headers);
        sym_curl_easy_setopt(f->easy, CURLOPT_HEADERFUNCTION, on_header);
        sym_curl_easy_setopt(f->easy, CURLOPT_HEADERDATA, f);
        sym_curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_body);
        sym_curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
        sym_curl_easy_setopt(f->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        sym_curl_easy_setopt(f->easy, CURLOPT_PROXY, "");             /* never the environment's */
        sym_curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
        sym_curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT_MS, FORWARD_CONNECT_TIMEOUT_MS);
        sym_curl_easy_setopt(f->easy, CURLOPT_TCP_NODELAY, 1L);
        sym_curl_easy_setopt(f->easy, CURLOPT_ERRORBUFFER, f->errbuf);
        sym_curl_easy_setopt(f->easy, CURLOPT_USERAGENT, "isol8-cluster");
        if (curl_loop_add(ctx->curl, f->easy) < 0) {
                forward_free(f);
                return -EIO;
        }
        http_request_suspend(r, on_request_gone, f);
        return 0;
}
