/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/curl.h"
#include "core/fetch.h"
#include "shared/crypto.h"
#include "shared/list.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"

#define REDIRECTS_MAX 5

/* ---- one fetch ---- */

struct Fetcher {
        sd_event *event;
        Resolver *resolver;
        const FetchPolicy *policy;
        CurlLoop *loop;
        CodeFetch *fetches;
};

struct CodeFetch {
        Fetcher *fetcher;
        CodeFetch *prev, *next;
        char *url;                  /* the URL being fetched now */
        char *hash;                 /* lowercase hex, or NULL */
        bool allow_insecure;
        unsigned hops;
        uint64_t deadline;          /* CLOCK_MONOTONIC */
        char *host;
        unsigned port;
        char checked[INET6_ADDRSTRLEN];
        struct sockaddr_storage addr;
        ResolveQuery *query;
        CURL *easy;
        struct curl_slist *resolve;
        char errbuf[CURL_ERROR_SIZE];
        Buffer body;
        bool too_big;
        CodeFetchFn cb;
        void *userdata;
        sd_event_source *defer;     /* the start, from the loop */
};

static void fetch_free(CodeFetch *q) {
        Fetcher *f = q->fetcher;
        LIST_REMOVE(f->fetches, q);
        resolve_query_cancel(q->query);
        if (q->easy) {
                curl_loop_remove(f->loop, q->easy);
                sym_curl_easy_cleanup(q->easy);
        }
        if (q->resolve)
                sym_curl_slist_free_all(q->resolve);
        sd_event_source_disable_unref(q->defer);
        buffer_done(&q->body);
        free(q->url);
        free(q->hash);
        free(q->host);
        free(q);
}

static void fetch_done(CodeFetch *q, int error, char *message) {
        CodeFetchFn cb = q->cb;
        void *userdata = q->userdata;
        char *data = NULL;
        size_t size = 0;

        if (error >= 0 && !message) {
                size = q->body.size;
                data = q->body.data ?: strdup("");
                q->body = (Buffer) {};
        }
        fetch_free(q);
        if (cb)
                cb(error, message, data, size, userdata);
        else
                free(data);
        free(message);
}

static void fetch_refuse(CodeFetch *q, const char *fmt, ...) _printf_(2, 3);
static void fetch_refuse(CodeFetch *q, const char *fmt, ...) {
        char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        if (!m) {
                fetch_done(q, -ENOMEM, NULL);
                return;
        }
        fetch_done(q, 0, m);
}

static bool host_rules_allow(const FetchPolicy *p, const char *host) {
        RegexList none = {};
        if (!egress_host_allowed(&none, &p->blocked_hosts, host))
                return false;
        return egress_host_allowed(&p->allowed_hosts, &none, host);
}

/* Parses and checks a URL: 0 with host and port, or -EINVAL with the client's message. */
static int check_url(Fetcher *f, const char *url, bool allow_insecure, char **ret_host, unsigned *ret_port, char **ret_error) {
        CURLU *u = sym_curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
        int r = 0;

        if (!u)
                return -ENOMEM;
        if (strlen(url) > 8192 || sym_curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
                r = errorf(ret_error, "Invalid code URL: %.200s", url);
                goto out;
        }
        if (sym_curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            sym_curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            sym_curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
                r = errorf(ret_error, "Invalid code URL: %.200s", url);
                goto out;
        }
        for (char *c = scheme; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        if (!strv_contains((char **) f->policy->allowed_schemes, scheme) ||
            (streq(scheme, "http") && !allow_insecure)) {
                r = errorf(ret_error, "Code URL scheme not allowed: %s%s", scheme,
                           streq(scheme, "http") && strv_contains((char **) f->policy->allowed_schemes, "http")
                                   ? " (set request.allowInsecureCodeUrl to use http)" : "");
                goto out;
        }
        if (sym_curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
                r = errorf(ret_error, "Code URL must not carry credentials");
                goto out;
        }
        /* [v6] literals come back with their brackets. */
        if (host[0] == '[') {
                size_t n = strlen(host);
                memmove(host, host + 1, n - 2);
                host[n - 2] = 0;
        }
        for (char *c = host; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        if (!egress_host_valid(host) || !host_rules_allow(f->policy, host)) {
                r = errorf(ret_error, "Blocked code URL host: %.253s", host);
                goto out;
        }
        if (ret_host) {
                *ret_host = strdup(host);
                if (!*ret_host) {
                        r = -ENOMEM;
                        goto out;
                }
                *ret_port = (unsigned) strtoul(port, NULL, 10);
        }
out:
        sym_curl_free(scheme);
        sym_curl_free(host);
        sym_curl_free(port);
        sym_curl_free(user);
        sym_curl_url_cleanup(u);
        return r;
}

static bool hash_valid(const char *h) {
        if (strlen(h) != 64)
                return false;
        for (const char *c = h; *c; c++)
                if (!isxdigit((unsigned char) *c))
                        return false;
        return true;
}

int fetcher_check_url(Fetcher *f, const char *url, const char *hash, bool allow_insecure, char **ret_error) {
        if (hash && !hash_valid(hash))
                return errorf(ret_error, "request.codeHash must be a SHA-256 in hex (64 characters)");
        if (!hash && f->policy->require_hash)
                return errorf(ret_error, "request.codeHash is required by this server for request.codeUrl");
        return check_url(f, url, allow_insecure, NULL, NULL, ret_error);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
        CodeFetch *q = userdata;
        size_t n = size * nmemb;
        if (q->body.size + n > q->fetcher->policy->max_size) {
                q->too_big = true;
                return 0;       /* ends the transfer */
        }
        return buffer_append(&q->body, ptr, n) < 0 ? 0 : n;
}

/* Belt and braces to CURLOPT_RESOLVE: libcurl connects to the checked address or to nothing. */
static curl_socket_t on_open_socket(void *userdata, curlsocktype purpose, struct curl_sockaddr *a) {
        CodeFetch *q = userdata;
        uint8_t want[16], got[16];

        if (purpose != CURLSOCKTYPE_IPCXN || sockaddr_to_v6((struct sockaddr *) &q->addr, want) < 0 ||
            sockaddr_to_v6(&a->addr, got) < 0 || memcmp(want, got, 16) != 0 ||
            !egress_address_allowed(q->fetcher->policy->egress, &a->addr))
                return CURL_SOCKET_BAD;
        return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void fetch_step(CodeFetch *q);

static void start_transfer(CodeFetch *q) {
        Fetcher *f = q->fetcher;
        const FetchPolicy *p = f->policy;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        char entry[INET6_ADDRSTRLEN + 300];
        CURL *e;

        if (now >= q->deadline) {
                fetch_refuse(q, "Fetching the code URL timed out");
                return;
        }
        snprintf(entry, sizeof(entry), strchr(q->checked, ':') ? "%s:%u:[%s]" : "%s:%u:%s", q->host, q->port, q->checked);
        q->resolve = sym_curl_slist_append(NULL, entry);
        e = q->easy = sym_curl_easy_init();
        if (!q->resolve || !e) {
                fetch_done(q, -ENOMEM, NULL);
                return;
        }
        sym_curl_easy_setopt(e, CURLOPT_URL, q->url);
        sym_curl_easy_setopt(e, CURLOPT_PRIVATE, q);
        sym_curl_easy_setopt(e, CURLOPT_RESOLVE, q->resolve);
        sym_curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
        sym_curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, q);
        sym_curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        sym_curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);   /* each hop is checked here */
        sym_curl_easy_setopt(e, CURLOPT_PROXY, "");            /* never the environment's */
        sym_curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        sym_curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) p->max_size);
        sym_curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        sym_curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
        sym_curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) MAX((q->deadline - now) / USEC_PER_MSEC, (uint64_t) 1));
        sym_curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf);
        sym_curl_easy_setopt(e, CURLOPT_USERAGENT, "isol8");
        if (p->ca_file)
                sym_curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
        if (curl_loop_add(f->loop, e) < 0)
                fetch_done(q, -EIO, NULL);
}

static void on_resolved(int error, const struct addrinfo *ai, void *userdata) {
        CodeFetch *q = userdata;
        socklen_t len;

        q->query = NULL;
        if (error != 0 || !ai) {
                fetch_refuse(q, "Cannot resolve code URL host %s: %s", q->host, gai_strerror(error));
                return;
        }
        if (!egress_pick_address(q->fetcher->policy->egress, ai, q->port, &q->addr, &len, q->checked)) {
                fetch_refuse(q, "Blocked code URL host: %s resolves to a private or special address (%s)", q->host, q->checked);
                return;
        }
        start_transfer(q);
}

/* Check the current URL, resolve its host, then fetch. */
static void fetch_step(CodeFetch *q) {
        char *error = NULL;
        socklen_t len;
        int r;

        free(q->host);
        q->host = NULL;
        r = check_url(q->fetcher, q->url, q->allow_insecure, &q->host, &q->port, &error);
        if (r < 0) {
                if (error)
                        fetch_done(q, 0, error);
                else
                        fetch_done(q, r, NULL);
                return;
        }
        if (egress_address_literal(q->host, q->port, &q->addr, &len) >= 0) {
                if (!egress_address_allowed(q->fetcher->policy->egress, (struct sockaddr *) &q->addr)) {
                        fetch_refuse(q, "Blocked code URL host: %s is a private or special address", q->host);
                        return;
                }
                snprintf(q->checked, sizeof(q->checked), "%s", q->host);
                start_transfer(q);
                return;
        }
        r = resolver_query(q->fetcher->resolver, q->host, on_resolved, q, &q->query);
        if (r < 0)
                fetch_done(q, r, NULL);
}

static void transfer_done(CodeFetch *q, CURLcode res) {
        Fetcher *f = q->fetcher;
        long status = 0;
        char *location = NULL;

        sym_curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
        if (res == CURLE_OK && status >= 300 && status < 400 &&
            sym_curl_easy_getinfo(q->easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location) {
                char *next = strdup(location);
                if (!next) {
                        fetch_done(q, -ENOMEM, NULL);
                        return;
                }
                curl_loop_remove(f->loop, q->easy);
                sym_curl_easy_cleanup(q->easy);
                q->easy = NULL;
                sym_curl_slist_free_all(q->resolve);
                q->resolve = NULL;
                buffer_done(&q->body);
                free(q->url);
                q->url = next;
                if (++q->hops > REDIRECTS_MAX) {
                        fetch_refuse(q, "Too many redirects fetching the code URL (at most %d)", REDIRECTS_MAX);
                        return;
                }
                fetch_step(q);
                return;
        }
        if (q->too_big || res == CURLE_FILESIZE_EXCEEDED) {
                fetch_refuse(q, "Remote code exceeds remoteCode.maxCodeSize (%" PRIu64 " bytes)", f->policy->max_size);
                return;
        }
        if (res == CURLE_OPERATION_TIMEDOUT) {
                fetch_refuse(q, "Fetching the code URL timed out");
                return;
        }
        if (res != CURLE_OK) {
                fetch_refuse(q, "Failed to fetch code URL: %s", q->errbuf[0] ? q->errbuf : sym_curl_easy_strerror(res));
                return;
        }
        if (status < 200 || status >= 300) {
                fetch_refuse(q, "Failed to fetch code URL: HTTP %ld", status);
                return;
        }
        if (memchr(q->body.data ?: "", 0, q->body.size)) {
                fetch_refuse(q, "Remote code must be text (it holds a NUL byte)");
                return;
        }
        if (q->hash) {
                char got[SHA256_HEX_LEN + 1];
                sha256_hex(q->body.data ?: "", q->body.size, got);
                if (!streq(got, q->hash)) {
                        fetch_refuse(q, "Code hash mismatch: expected %s, got %s", q->hash, got);
                        return;
                }
        }
        fetch_done(q, 0, NULL);
}

static void on_transfer_done(CURL *easy, CURLcode result, void *userdata) {
        CodeFetch *q = NULL;
        sym_curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &q);
        if (q)
                transfer_done(q, result);
}

int fetcher_new(sd_event *event, Resolver *resolver, const FetchPolicy *policy, Fetcher **ret) {
        _cleanup_(fetcher_freep) Fetcher *f = NULL;
        int r;

        r = curl_load("remoteCode");
        if (r < 0)
                return r;
        f = calloc(1, sizeof(Fetcher));
        if (!f)
                return -ENOMEM;
        f->event = event;
        f->resolver = resolver;
        f->policy = policy;
        r = curl_loop_new(event, "code-fetch", on_transfer_done, f, &f->loop);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

Fetcher *fetcher_free(Fetcher *f) {
        if (!f)
                return NULL;
        while (f->fetches)
                fetch_free(f->fetches);
        curl_loop_free(f->loop);
        free(f);
        return NULL;
}

static int on_start(sd_event_source *s, void *userdata) {
        CodeFetch *q = userdata;
        q->defer = sd_event_source_disable_unref(q->defer);
        fetch_step(q);
        return 0;
}

int code_fetch_start(Fetcher *f, const char *url, const char *hash, bool allow_insecure, uint64_t timeout_ms,
                     CodeFetchFn cb, void *userdata, CodeFetch **ret) {
        CodeFetch *q = calloc(1, sizeof(CodeFetch));

        if (!q)
                return -ENOMEM;
        q->fetcher = f;
        q->url = strdup(url);
        q->hash = hash ? strdup(hash) : NULL;
        if (!q->url || (hash && !q->hash)) {
                free(q->url);
                free(q->hash);
                free(q);
                return -ENOMEM;
        }
        for (char *c = q->hash; c && *c; c++)
                *c = (char) tolower((unsigned char) *c);
        q->allow_insecure = allow_insecure;
        q->deadline = now_usec(CLOCK_MONOTONIC) + MIN(timeout_ms, f->policy->timeout_ms) * USEC_PER_MSEC;
        q->cb = cb;
        q->userdata = userdata;
        LIST_PREPEND(f->fetches, q);
        /* From the loop: cb never comes before this returns. */
        if (sd_event_add_defer(f->event, &q->defer, on_start, q) < 0) {
                fetch_free(q);
                return -ENOMEM;
        }
        (void) sd_event_source_set_description(q->defer, "code-fetch-start");
        if (ret)
                *ret = q;
        return 0;
}

void code_fetch_cancel(CodeFetch *q) {
        if (q)
                fetch_free(q);
}
