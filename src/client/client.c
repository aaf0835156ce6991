/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "shared/websocket.h"
#include "isol8/isol8.h"
#include "shared/crypto.h"
#include "shared/json-util.h"
#include "shared/util.h"

#define WS_MAX_FRAME (16u << 20)

struct isol8_client {
        char *url;              /* without a trailing slash */
        char *key;
        long connect_timeout_ms;
        isol8_transport transport;
        isol8_transport last;
        bool ws_worked;         /* once WebSocket worked, it is not silently given up */
        long status;
        char error[512];
};

static int fail(isol8_client *c, int error, const char *fmt, ...) _printf_(3, 4);
static int fail(isol8_client *c, int error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof(c->error), fmt, ap);
        va_end(ap);
        return error < 0 ? error : -error;
}

int isol8_client_new(isol8_client **ret, const char *url, const char *key) {
        static bool curl_ready;
        isol8_client *c;
        size_t n;

        if (!url || !*url)
                return -EINVAL;
        if (!curl_ready) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
                        return -EIO;
                curl_ready = true;
        }
        c = calloc(1, sizeof(isol8_client));
        if (!c)
                return -ENOMEM;
        c->url = strdup(url);
        c->key = key ? strdup(key) : NULL;
        if (!c->url || (key && !c->key)) {
                isol8_client_free(c);
                return -ENOMEM;
        }
        n = strlen(c->url);
        while (n > 0 && c->url[n - 1] == '/')
                c->url[--n] = 0;
        c->connect_timeout_ms = 5000;
        *ret = c;
        return 0;
}

void isol8_client_free(isol8_client *c) {
        if (!c)
                return;
        if (c->key)
                explicit_bzero(c->key, strlen(c->key));
        free(c->key);
        free(c->url);
        free(c);
}

void isol8_client_set_timeout(isol8_client *c, long connect_ms) {
        c->connect_timeout_ms = connect_ms;
}

void isol8_client_set_transport(isol8_client *c, isol8_transport t) {
        c->transport = t;
}

isol8_transport isol8_client_last_transport(isol8_client *c) {
        return c->last;
}

const char *isol8_client_error(isol8_client *c) {
        return c->error;
}

long isol8_client_status(isol8_client *c) {
        return c->status;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
        return buffer_append(userdata, p, size * n) < 0 ? 0 : size * n;
}

/* The server's {"error": "..."} if there is one. */
static void describe_answer(isol8_client *c, const Buffer *body) {
        _cleanup_json_ json_object *o = NULL;
        const char *msg;
        if (body->size > 0 && json_parse_limited(body->data, body->size, 32, &o) >= 0 && json_get_string(o, "error", &msg) >= 0)
                snprintf(c->error, sizeof(c->error), "%s (HTTP %ld)", msg, c->status);
        else
                snprintf(c->error, sizeof(c->error), "HTTP %ld", c->status);
}

static struct curl_slist *headers(isol8_client *c, bool json) {
        struct curl_slist *h = NULL;
        char auth[600];
        if (c->key) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->key);
                h = curl_slist_append(h, auth);
        }
        if (json)
                h = curl_slist_append(h, "Content-Type: application/json");
        return curl_slist_append(h, "Expect:");
}

static int request(isol8_client *c, const char *method, const char *path, const char *body, Buffer *out) {
        _cleanup_free_ char *url = NULL;
        struct curl_slist *h;
        CURL *e;
        CURLcode rc;
        char errbuf[CURL_ERROR_SIZE] = "";

        if (asprintf(&url, "%s%s", c->url, path) < 0)
                return -ENOMEM;
        e = curl_easy_init();
        if (!e)
                return -ENOMEM;
        h = headers(c, body != NULL);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        if (body) {
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
        }
        rc = curl_easy_perform(e);
        c->status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
        curl_easy_cleanup(e);
        curl_slist_free_all(h);
        if (rc != CURLE_OK)
                return fail(c, EHOSTUNREACH, "cannot reach %s: %s", c->url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        if (c->status >= 400) {
                describe_answer(c, out);
                return c->status == 401 || c->status == 403 ? -EACCES : c->status == 404 ? -ENOENT : -EPROTO;
        }
        return 0;
}

static int request_json(isol8_client *c, const char *method, const char *path, const char *body, json_object **ret) {
        Buffer out = {};
        int r = request(c, method, path, body, &out);
        if (r >= 0 && json_parse_limited(out.data ?: "", out.size, 64, ret) < 0)
                r = fail(c, EBADMSG, "the server's answer is not JSON");
        buffer_done(&out);
        return r;
}

int isol8_health(isol8_client *c, char **ret_version) {
        _cleanup_json_ json_object *o = NULL;
        const char *v;
        int r = request_json(c, "GET", "/health", NULL, &o);
        if (r < 0)
                return r;
        if (json_get_string(o, "version", &v) < 0)
                return fail(c, EBADMSG, "unexpected health answer");
        if (ret_version)
                *ret_version = strdup(v);
        return 0;
}

static char *dup_field(json_object *o, const char *key) {
        const char *s;
        return json_get_string(o, key, &s) >= 0 ? strdup(s) : strdup("");
}

int isol8_execute(isol8_client *c, const char *envelope, isol8_result **ret) {
        _cleanup_json_ json_object *o = NULL;
        isol8_result *res;
        uint64_t u;
        int r;

        r = request_json(c, "POST", "/execute", envelope, &o);
        if (r < 0)
                return r;
        res = calloc(1, sizeof(isol8_result));
        if (!res)
                return -ENOMEM;
        res->exit_code = json_object_get_int(json_object_object_get(o, "exitCode"));
        res->stdout_text = dup_field(o, "stdout");
        res->stderr_text = dup_field(o, "stderr");
        res->execution_id = dup_field(o, "executionId");
        (void) json_get_bool(o, "truncated", &res->truncated);
        (void) json_get_bool(o, "timedOut", &res->timed_out);
        if (json_get_u64(o, "durationMs", &u) >= 0)
                res->duration_ms = (long) u;
        res->json = strdup(json_to_string(o));
        *ret = res;
        return 0;
}

void isol8_result_free(isol8_result *r) {
        if (!r)
                return;
        free(r->stdout_text);
        free(r->stderr_text);
        free(r->execution_id);
        free(r->json);
        free(r);
}

static int deliver_event(const char *text, size_t len, const isol8_stream_callbacks *cb, void *userdata, int *exit_code) {
        _cleanup_json_ json_object *o = NULL;
        const char *type, *data = "", *phase = NULL;

        if (json_parse_limited(text, len, 32, &o) < 0 || json_get_string(o, "type", &type) < 0)
                return 0;
        (void) json_get_string(o, "data", &data);
        (void) json_get_string(o, "phase", &phase);
        if (streq(type, "exit"))
                *exit_code = atoi(data);
        if (cb && cb->on_event)
                cb->on_event(type, data, phase, userdata);
        return 0;
}

/* ---- Server-Sent Events ---- */

typedef struct SseState {
        Buffer line;
        const isol8_stream_callbacks *cb;
        void *userdata;
        int *exit_code;
} SseState;

static size_t on_sse(char *p, size_t size, size_t n, void *userdata) {
        SseState *s = userdata;
        size_t total = size * n;
        for (size_t i = 0; i < total; i++) {
                if (p[i] != '\n') {
                        if (buffer_append(&s->line, p + i, 1) < 0)
                                return 0;
                        continue;
                }
                if (s->line.size > 6 && strncmp(s->line.data, "data: ", 6) == 0)
                        deliver_event(s->line.data + 6, s->line.size - 6, s->cb, s->userdata, s->exit_code);
                s->line.size = 0;
        }
        return total;
}

static int stream_sse(isol8_client *c, const char *envelope, const isol8_stream_callbacks *cb, void *userdata, int *exit_code) {
        _cleanup_free_ char *url = NULL;
        SseState s = { .cb = cb, .userdata = userdata, .exit_code = exit_code };
        struct curl_slist *h;
        char errbuf[CURL_ERROR_SIZE] = "";
        CURLcode rc;
        CURL *e;

        if (asprintf(&url, "%s/execute/stream", c->url) < 0)
                return -ENOMEM;
        e = curl_easy_init();
        if (!e)
                return -ENOMEM;
        h = headers(c, true);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, envelope);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) strlen(envelope));
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_sse);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        rc = curl_easy_perform(e);
        c->status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
        curl_easy_cleanup(e);
        curl_slist_free_all(h);
        c->last = ISOL8_TRANSPORT_SSE;
        if (rc != CURLE_OK) {
                buffer_done(&s.line);
                return fail(c, EHOSTUNREACH, "cannot reach %s: %s", c->url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        }
        if (c->status >= 400) {
                /* An error answer is JSON, collected as a "line" without a newline. */
                describe_answer(c, &s.line);
                buffer_done(&s.line);
                return c->status == 401 || c->status == 403 ? -EACCES : c->status == 404 ? -ENOENT : -EPROTO;
        }
        buffer_done(&s.line);
        return 0;
}

/* ---- WebSocket on a libcurl CONNECT_ONLY connection ---- */

static int wait_sock(curl_socket_t sock, short events, int timeout_ms) {
        struct pollfd p = { .fd = sock, .events = events };
        int r = poll(&p, 1, timeout_ms);
        return r < 0 ? -errno : r;
}

static int send_all(CURL *e, curl_socket_t sock, const void *data, size_t len) {
        const char *p = data;
        while (len > 0) {
                size_t sent = 0;
                CURLcode rc = curl_easy_send(e, p, len, &sent);
                if (rc == CURLE_AGAIN) {
                        if (wait_sock(sock, POLLOUT, 10000) <= 0)
                                return -ETIMEDOUT;
                        continue;
                }
                if (rc != CURLE_OK)
                        return -ECONNRESET;
                p += sent;
                len -= sent;
        }
        return 0;
}

static int send_message(CURL *e, curl_socket_t sock, json_object *o) {
        Buffer b = {};
        const char *s = json_to_string(o);
        int r = ws_append_client_frame(&b, WS_OP_TEXT, s, strlen(s));
        if (r >= 0)
                r = send_all(e, sock, b.data, b.size);
        buffer_done(&b);
        return r;
}

/* 1: upgraded; 0: the server (or a proxy) answered without upgrading; < 0: failure. */
static int ws_handshake(isol8_client *c, CURL *e, curl_socket_t sock, Buffer *rest) {
        char host[512], path[1024], key_b64[32], expect[29];
        _cleanup_free_ char *req = NULL, *b64 = NULL;
        uint8_t nonce[16];
        const char *u = c->url, *hp, *slash;
        Buffer head = {};
        int r;

        hp = strstr(u, "://");
        hp = hp ? hp + 3 : u;
        slash = strchr(hp, '/');
        snprintf(host, sizeof(host), "%.*s", (int) (slash ? (size_t) (slash - hp) : strlen(hp)), hp);
        snprintf(path, sizeof(path), "%s/execute/ws", slash ? slash : "");
        if (random_bytes(nonce, sizeof(nonce)) < 0 || !(b64 = base64_encode(nonce, sizeof(nonce))))
                return -EIO;
        snprintf(key_b64, sizeof(key_b64), "%s", b64);
        if (ws_accept_key(key_b64, expect) < 0)
                return -EIO;
        if (asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     path, host, key_b64, c->key ? "Authorization: Bearer " : "", c->key ?: "", c->key ? "\r\n" : "") < 0)
                return -ENOMEM;
        r = send_all(e, sock, req, strlen(req));
        explicit_bzero(req, strlen(req));
        if (r < 0)
                return r;
        for (;;) {
                char buf[4096];
                size_t got = 0;
                char *end;
                CURLcode rc = curl_easy_recv(e, buf, sizeof(buf), &got);
                if (rc == CURLE_AGAIN) {
                        if (wait_sock(sock, POLLIN, 30000) <= 0) {
                                buffer_done(&head);
                                return -ETIMEDOUT;
                        }
                        continue;
                }
                if (rc != CURLE_OK || got == 0) {
                        buffer_done(&head);
                        return 0;   /* closed without an answer: treat as "no upgrade" */
                }
                buffer_append(&head, buf, got);
                end = head.data ? strstr(head.data, "\r\n\r\n") : NULL;
                if (!end) {
                        if (head.size > 65536) {
                                buffer_done(&head);
                                return -EPROTO;
                        }
                        continue;
                }
                *end = 0;
                sscanf(head.data, "HTTP/%*s %ld", &c->status);
                if (c->status == 101) {
                        bool ok = false;
                        for (char *l = strstr(head.data, "\r\n"); l; l = strstr(l + 2, "\r\n"))
                                if (strncasecmp(l + 2, "Sec-WebSocket-Accept:", 21) == 0) {
                                        const char *v = l + 2 + 21;
                                        v += strspn(v, " \t");
                                        ok = strncmp(v, expect, 28) == 0;
                                }
                        buffer_append(rest, end + 4, head.size - (size_t) (end + 4 - head.data));
                        buffer_done(&head);
                        return ok ? 1 : -EPROTO;
                }
                /* Not upgraded: keep the server's error for the caller. */
                {
                        Buffer body = {};
                        buffer_append(&body, end + 4, head.size - (size_t) (end + 4 - head.data));
                        describe_answer(c, &body);
                        buffer_done(&body);
                }
                buffer_done(&head);
                return 0;
        }
}

static int stream_ws(isol8_client *c, const char *envelope, const isol8_stream_callbacks *cb, void *userdata, int *exit_code) {
        _cleanup_free_ char *url = NULL;
        _cleanup_json_ json_object *env = NULL, *msg = NULL;
        curl_socket_t sock;
        Buffer in = {};
        CURLcode rc;
        CURL *e;
        int stdin_fd = cb ? cb->stdin_fd : -1;
        bool done = false;
        int r;

        if (json_parse_limited(envelope, strlen(envelope), 64, &env) < 0 || !json_object_is_type(env, json_type_object))
                return fail(c, EINVAL, "the request is not a JSON object");
        if (asprintf(&url, "%s/execute/ws", c->url) < 0)
                return -ENOMEM;
        e = curl_easy_init();
        if (!e)
                return -ENOMEM;
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        rc = curl_easy_perform(e);
        if (rc != CURLE_OK) {
                curl_easy_cleanup(e);
                return fail(c, EHOSTUNREACH, "cannot reach %s: %s", c->url, curl_easy_strerror(rc));
        }
        curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &sock);
        r = ws_handshake(c, e, sock, &in);
        if (r <= 0) {
                curl_easy_cleanup(e);
                buffer_done(&in);
                if (r == 0 && (c->status == 401 || c->status == 403))
                        return -EACCES;
                return r == 0 ? -ENOTSUP : fail(c, -r, "WebSocket handshake failed: %s", strerror(-r));
        }
        c->ws_worked = true;
        c->last = ISOL8_TRANSPORT_WEBSOCKET;

        msg = json_object_get(env);
        json_object_object_add(msg, "type", json_object_new_string("execute"));
        if (stdin_fd >= 0)   /* live input: the program's stdin stays open for our stdin messages */
                json_object_object_add(msg, "interactive", json_object_new_boolean(true));
        r = send_message(e, sock, msg);
        while (r >= 0 && !done) {
                struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = stdin_fd, .events = POLLIN } };
                size_t off = 0;

                /* frames already buffered first */
                while (off < in.size) {
                        WsFrame f;
                        ssize_t k = ws_parse_frame((uint8_t *) in.data + off, in.size - off, WS_MAX_FRAME, &f);
                        if (k == 0)
                                break;
                        if (k < 0) {
                                r = fail(c, EPROTO, "WebSocket protocol error");
                                break;
                        }
                        off += (size_t) k;
                        if (f.opcode == WS_OP_TEXT)
                                deliver_event((const char *) f.payload, f.length, cb, userdata, exit_code);
                        else if (f.opcode == WS_OP_PING) {
                                Buffer b = {};
                                ws_append_client_frame(&b, WS_OP_PONG, f.payload, f.length);
                                r = send_all(e, sock, b.data, b.size);
                                buffer_done(&b);
                        } else if (f.opcode == WS_OP_CLOSE) {
                                Buffer b = {};
                                uint8_t code[2] = { f.length >= 2 ? f.payload[0] : 0x03, f.length >= 2 ? f.payload[1] : 0xe8 };
                                ws_append_client_frame(&b, WS_OP_CLOSE, code, 2);
                                (void) send_all(e, sock, b.data, b.size);
                                buffer_done(&b);
                                done = true;
                                break;
                        }
                }
                if (off > 0) {
                        memmove(in.data, in.data + off, in.size - off);
                        in.size -= off;
                }
                if (done || r < 0)
                        break;
                if (poll(p, stdin_fd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (stdin_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP))) {
                        char buf[4096];
                        ssize_t n = read(stdin_fd, buf, sizeof(buf));
                        _cleanup_json_ json_object *m = json_object_new_object();
                        json_add(m, "type", json_object_new_string("stdin"));
                        if (n <= 0) {
                                json_add(m, "data", json_object_new_string(""));
                                json_add(m, "eof", json_object_new_boolean(true));
                                stdin_fd = -1;
                        } else
                                json_add(m, "data", json_object_new_string_len(buf, (int) n));
                        r = send_message(e, sock, m);
                }
                if (p[0].revents) {
                        char buf[65536];
                        size_t got = 0;
                        rc = curl_easy_recv(e, buf, sizeof(buf), &got);
                        if (rc == CURLE_AGAIN)
                                continue;
                        if (rc != CURLE_OK || got == 0) {
                                if (*exit_code < 0)
                                        r = fail(c, ECONNRESET, "the server closed the connection");
                                break;
                        }
                        buffer_append(&in, buf, got);
                }
        }
        buffer_done(&in);
        curl_easy_cleanup(e);
        return r < 0 ? r : 0;
}

int isol8_execute_stream(isol8_client *c, const char *envelope, const isol8_stream_callbacks *cb, void *userdata,
                         int *ret_exit_code) {
        int exit_code = -1, r;

        if (c->transport != ISOL8_TRANSPORT_SSE) {
                r = stream_ws(c, envelope, cb, userdata, &exit_code);
                if (r == -ENOTSUP && c->transport == ISOL8_TRANSPORT_AUTO && !c->ws_worked) {
                        /* No upgrade (an old server, a proxy in between): Server-Sent Events. */
                        r = stream_sse(c, envelope, cb, userdata, &exit_code);
                } else if (r == -ENOTSUP)
                        r = fail(c, ENOTSUP, "the server did not upgrade to a WebSocket (%s)", c->error);
        } else
                r = stream_sse(c, envelope, cb, userdata, &exit_code);
        if (r < 0)
                return r;
        if (exit_code < 0 && !c->error[0])
                snprintf(c->error, sizeof(c->error), "the run ended without an exit event");
        if (ret_exit_code)
                *ret_exit_code = exit_code;
        return 0;
}

int isol8_file_put(isol8_client *c, const char *session_id, const char *path, const void *data, size_t size) {
        _cleanup_json_ json_object *o = json_object_new_object(), *res = NULL;
        _cleanup_free_ char *b64 = base64_encode(data, size);
        if (!o || !b64)
                return -ENOMEM;
        json_add(o, "sessionId", json_object_new_string(session_id));
        json_add(o, "path", json_object_new_string(path));
        json_add(o, "content", json_object_new_string(b64));
        return request_json(c, "POST", "/file", json_to_string(o), &res);
}

int isol8_file_get(isol8_client *c, const char *session_id, const char *path, void **ret, size_t *ret_size) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *q = NULL;
        char *es, *ep;
        const char *content;
        CURL *e = curl_easy_init();
        int r;

        if (!e)
                return -ENOMEM;
        es = curl_easy_escape(e, session_id, 0);
        ep = curl_easy_escape(e, path, 0);
        r = asprintf(&q, "/file?sessionId=%s&path=%s", es, ep) < 0 ? -ENOMEM : 0;
        curl_free(es);
        curl_free(ep);
        curl_easy_cleanup(e);
        if (r < 0)
                return r;
        r = request_json(c, "GET", q, NULL, &o);
        if (r < 0)
                return r;
        if (json_get_string(o, "content", &content) < 0)
                return fail(c, EBADMSG, "unexpected answer");
        return base64_decode(content, strlen(content), ret, ret_size);
}

int isol8_sessions(isol8_client *c, char **ret_json) {
        Buffer out = {};
        int r = request(c, "GET", "/sessions", NULL, &out);
        if (r < 0) {
                buffer_done(&out);
                return r;
        }
        *ret_json = buffer_steal_string(&out);
        return 0;
}

int isol8_session_delete(isol8_client *c, const char *session_id) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *p = NULL;
        if (asprintf(&p, "/session/%s", session_id) < 0)
                return -ENOMEM;
        return request_json(c, "DELETE", p, NULL, &o);
}

int isol8_login(isol8_client *c, const char *name, uint64_t ttl_ms, char **ret_token, char **ret_expires, char **ret_key_id) {
        _cleanup_json_ json_object *body = json_object_new_object(), *o = NULL;
        int r;

        if (!body)
                return -ENOMEM;
        if (name)
                json_add(body, "name", json_object_new_string(name));
        if (ttl_ms)
                json_add(body, "ttlMs", json_object_new_int64((int64_t) ttl_ms));
        r = request_json(c, "POST", "/auth/login", json_to_string(body), &o);
        if (r < 0)
                return r;
        *ret_token = dup_field(o, "token");
        if (ret_expires)
                *ret_expires = dup_field(o, "expiresAt");
        if (ret_key_id)
                *ret_key_id = dup_field(o, "keyId");
        return 0;
}
