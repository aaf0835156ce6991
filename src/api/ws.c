/* SPDX-License-Identifier: MIT */
/* GET /execute/ws: a WebSocket (RFC 6455) over libmicrohttpd's upgrade. After the 101 the
 * socket is ours: frames are read and written from sd-event io sources. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api.h"
#include "api/render.h"
#include "api/request.h"
#include "api/ws-relay.h"
#include "shared/crypto.h"
#include "shared/websocket.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"

#define WS_MAX_MESSAGE (1u << 20)
#define WS_HIGH_WATER (1u << 20)
#define WS_LOW_WATER (256u << 10)
#define WS_CLOSE_WAIT_USEC (2 * USEC_PER_SEC)
/* A peer that takes nothing of what is queued for it for this long is dropped (its run is
 * cancelled), and one with more than WS_SEND_MAX queued at once too: pongs and error events
 * cannot grow our memory. While more than WS_HIGH_WATER waits, its input is not read. */
#define WS_STALL_USEC (10 * USEC_PER_SEC)
#define WS_SEND_MAX (8u << 20)

typedef struct WsConn {
        ApiContext *ctx;
        HttpServer *server;
        struct MHD_UpgradeResponseHandle *urh;
        int fd;
        sd_event_source *io;
        sd_event_source *close_timer;
        sd_event_source *stall_timer;
        sd_event_source *free_defer;
        Buffer in;
        Buffer out;
        size_t out_off;
        WsMessage msg;
        Run *run;
        bool run_done;
        bool started;
        bool interactive;           /* the client asked for live stdin ("interactive": true) */
        Buffer early_stdin;         /* stdin messages that came before "execute" */
        bool early_eof;
        bool close_sent;
        bool peer_gone;
        bool released;
        AuthInfo who;               /* from the upgrade request */
        char remote[64];
        /* A session another server of the cluster holds: looked up, then relayed there. */
        bool locating;              /* input waits meanwhile */
        ClusterCall *locate;
        ExecRequest *pending_req;
        Buffer execute_msg;         /* the "execute" message, passed on as it came */
        WsRelay *relay;
} WsConn;

static void ws_release(WsConn *c);

static void update_events(WsConn *c) {
        size_t queued = c->out.size - c->out_off;
        uint32_t ev = EPOLLRDHUP;
        if (queued <= WS_HIGH_WATER)
                ev |= EPOLLIN;
        if (queued > 0)
                ev |= EPOLLOUT;
        if (c->io)
                (void) sd_event_source_set_io_events(c->io, ev);
}

static int on_stall_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        WsConn *c = userdata;
        log_debug("websocket %s: the peer took nothing for %us; dropping it", c->remote,
                  (unsigned) (WS_STALL_USEC / USEC_PER_SEC));
        c->peer_gone = true;
        ws_release(c);
        return 0;
}

/* Armed while output waits; every byte the peer takes starts it over. */
static void stall_watch(WsConn *c, bool progress) {
        if (c->out.size == c->out_off || c->released) {
                c->stall_timer = sd_event_source_disable_unref(c->stall_timer);
                return;
        }
        if (!c->stall_timer) {
                (void) sd_event_add_time_relative(c->ctx->event, &c->stall_timer, CLOCK_MONOTONIC, WS_STALL_USEC,
                                                  100 * USEC_PER_MSEC, on_stall_timer, c);
                (void) sd_event_source_set_description(c->stall_timer, "ws-stall");
        } else if (progress)
                (void) sd_event_source_set_time_relative(c->stall_timer, WS_STALL_USEC);
}

static void ws_flush(WsConn *c) {
        size_t before = c->out_off;
        bool progress;

        while (c->out.size > c->out_off) {
                ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.size - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                c->peer_gone = true;
                        break;
                }
                c->out_off += (size_t) n;
        }
        progress = c->out_off != before;
        if (c->out_off == c->out.size) {
                c->out.size = 0;
                c->out_off = 0;
        }
        stall_watch(c, progress);
        if (c->run && c->out.size - c->out_off < WS_LOW_WATER)
                run_pause(c->run, false);
        update_events(c);
}

static void ws_send(WsConn *c, uint8_t opcode, const char *data, size_t len) {
        if (c->close_sent || c->peer_gone)
                return;
        if (c->out.size - c->out_off + len > WS_SEND_MAX) {
                log_debug("websocket %s: more than %u bytes queued for a peer that does not read; dropping it",
                          c->remote, WS_SEND_MAX);
                /* Released from the loop, not from inside the run's output callback. */
                c->peer_gone = true;
                if (!c->stall_timer) {
                        (void) sd_event_add_time_relative(c->ctx->event, &c->stall_timer, CLOCK_MONOTONIC, 0, 0,
                                                          on_stall_timer, c);
                        (void) sd_event_source_set_description(c->stall_timer, "ws-stall");
                } else
                        (void) sd_event_source_set_time_relative(c->stall_timer, 0);
                return;
        }
        if (ws_append_frame(&c->out, opcode, data, len) < 0)
                return;
        if (c->run && c->out.size - c->out_off > WS_HIGH_WATER)
                run_pause(c->run, true);
        ws_flush(c);
}

static void ws_send_event(WsConn *c, const char *type, const char *data) {
        json_object *o = json_object_new_object();
        size_t len;
        const char *s;
        if (!o)
                return;
        json_add(o, "type", json_object_new_string(type));
        json_add(o, "data", json_object_new_string(data));
        json_add(o, "phase", json_object_new_string("code"));
        s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        ws_send(c, WS_OP_TEXT, s, len);
        json_object_put(o);
}

static int on_close_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        WsConn *c = userdata;
        c->peer_gone = true;
        ws_release(c);
        return 0;
}

static void ws_close(WsConn *c, uint16_t code, const char *reason) {
        if (c->close_sent)
                return;
        if (!c->peer_gone && ws_append_close(&c->out, code, reason) >= 0)
                ws_flush(c);
        c->close_sent = true;
        /* Wait a moment for the peer's close frame, as RFC 6455 asks, then drop the connection. */
        if (!c->close_timer) {
                (void) sd_event_add_time_relative(c->ctx->event, &c->close_timer, CLOCK_MONOTONIC, WS_CLOSE_WAIT_USEC, 10000,
                                                  on_close_timer, c);
                (void) sd_event_source_set_description(c->close_timer, "ws-close");
        }
        if (c->peer_gone)
                ws_release(c);
}

static void ws_free(WsConn *c) {
        run_free(c->run);
        ws_relay_free(c->relay);
        cluster_call_cancel(c->locate);
        exec_request_free(c->pending_req);
        buffer_done(&c->execute_msg);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->close_timer);
        sd_event_source_disable_unref(c->stall_timer);
        sd_event_source_disable_unref(c->free_defer);
        buffer_done(&c->in);
        buffer_done(&c->out);
        buffer_done(&c->early_stdin);
        ws_message_reset(&c->msg);
        free(c);
}

static int on_free_defer(sd_event_source *s, void *userdata) {
        ws_free(userdata);
        return 0;
}

/* Frees the connection from the loop, never from inside one of its own callbacks. */
static void ws_free_later(WsConn *c) {
        if (!c->free_defer) {
                (void) sd_event_add_defer(c->ctx->event, &c->free_defer, on_free_defer, c);
                (void) sd_event_source_set_description(c->free_defer, "ws-free");
        }
}

/* Gives the socket back to MHD to close; the connection object goes once the run is over too. */
static void ws_release(WsConn *c) {
        if (!c->released) {
                c->released = true;
                c->io = sd_event_source_disable_unref(c->io);
                c->close_timer = sd_event_source_disable_unref(c->close_timer);
                c->stall_timer = sd_event_source_disable_unref(c->stall_timer);
                if (c->run && !c->run_done)
                        run_cancel(c->run);
                /* The relay watches the socket: it goes before MHD closes it. */
                c->relay = ws_relay_free(c->relay);
                cluster_call_cancel(TAKE_PTR(c->locate));
                MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
                /* In external-loop mode MHD must run once more to finish the close. */
                http_server_kick(c->server);
        }
        if (c->run_done || !c->run)
                ws_free_later(c);
}

static void ws_event(void *userdata, const RunEvent *ev) {
        WsConn *c = userdata;
        _cleanup_json_ json_object *o = NULL;
        const char *json;
        size_t len;

        if (!c->released && (o = api_event_object(ev)) && (json = api_event_text(o, &len)))
                ws_send(c, WS_OP_TEXT, json, len);
}

static void ws_done(void *userdata, int error, Outcome outcome, const char *message, const ExecResult *res,
                    const ExecRequest *req) {
        WsConn *c = userdata;
        c->run_done = true;
        if (c->released) {
                ws_free_later(c);
                return;
        }
        ws_close(c, WS_CLOSE_NORMAL, "Execution complete");
}

static int parse_signal(const char *s) {
        if (streq(s, "SIGINT"))
                return SIGINT;
        if (streq(s, "SIGTERM"))
                return SIGTERM;
        if (streq(s, "SIGKILL"))
                return SIGKILL;
        return -EINVAL;
}

static void ws_start_run(WsConn *c, ExecRequest *req) {
        static const RunOps ops = { .event = ws_event, .done = ws_done };
        _cleanup_free_ char *error = NULL;
        int r;

        r = run_start(c->ctx->m, &c->who, c->remote, req, c->interactive, &ops, c, &c->run, &error);
        if (r != 0) {
                if (r < 0)
                        log_error_errno(r, "WebSocket execution could not start: %m");
                ws_send_event(c, "error", r < 0 ? "Internal error" : error ?: outcome_message((Outcome) r));
                ws_close(c, WS_CLOSE_NORMAL, "Execution complete");
                return;
        }
        if (c->interactive && (c->early_stdin.size > 0 || c->early_eof))
                (void) run_stdin(c->run, c->early_stdin.data, c->early_stdin.size, c->early_eof);
        buffer_done(&c->early_stdin);
}

static void handle_input(WsConn *c);

/* The end of the exchange with an error event, as a refused run ends it. */
static void ws_refuse(WsConn *c, const char *message) {
        c->locating = false;
        ws_send_event(c, "error", message);
        ws_close(c, WS_CLOSE_NORMAL, "Execution complete");
}

static void on_relay_end(void *userdata) {
        WsConn *c = userdata;
        c->peer_gone = true;
        ws_release(c);
}

static void on_relay_ready(void *userdata, const char *error, bool lost) {
        WsConn *c = userdata;

        if (error) {
                c->relay = ws_relay_free(c->relay);
                ws_refuse(c, lost ? outcome_message(OUTCOME_SESSION_LOST) : error);
                return;
        }
        /* From here on the socket is the relay's: bytes pass unchanged both ways. */
        ws_flush(c);
        c->io = sd_event_source_disable_unref(c->io);
        c->stall_timer = sd_event_source_disable_unref(c->stall_timer);
        if (ws_relay_attach(c->relay, c->fd, c->in.data, c->in.size, on_relay_end, c) < 0) {
                c->peer_gone = true;
                ws_release(c);
                return;
        }
        c->in.size = 0;
}

/* The head of the upgrade to the server holding the session, signed for this client, and
 * what the client sent before: its early input, then its "execute" message. */
static int ws_relay_begin(WsConn *c, const char *url) {
        Manager *m = c->ctx->m;
        _cleanup_free_ char *head = NULL, *key = NULL;
        _cleanup_(buffer_done) Buffer first = {};
        ClusterSignature sig;
        uint8_t nonce[16];
        size_t hl;
        int r;

        r = manager_cluster_sign(m, "GET", "/execute/ws", &c->who, c->remote, &sig);
        if (r < 0)
                return r;
        if (random_bytes(nonce, sizeof(nonce)) < 0 || !(key = base64_encode(nonce, sizeof(nonce))))
                return -ENOMEM;
        hl = strcspn(url + strlen("http://"), "/");
        if (asprintf(&head,
                     "GET /execute/ws HTTP/1.1\r\nHost: %.*s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nX-Isol8-Cluster: %s\r\n"
                     "X-Isol8-Identity: %s\r\nX-Isol8-Client: %s\r\n\r\n",
                     (int) hl, url + strlen("http://"), key, sig.stamp, sig.identity, c->remote) < 0)
                return -ENOMEM;
        if (c->early_stdin.size > 0 || c->early_eof) {
                _cleanup_json_ json_object *o = json_object_new_object();
                const char *s;
                size_t n;
                if (!o)
                        return -ENOMEM;
                json_add(o, "type", json_object_new_string("stdin"));
                json_add(o, "data", json_object_new_string_len(c->early_stdin.data ?: "", (int) c->early_stdin.size));
                json_add(o, "eof", json_object_new_boolean(c->early_eof));
                s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
                if (ws_append_client_frame(&first, WS_OP_TEXT, s, n) < 0)
                        return -ENOMEM;
        }
        if (ws_append_client_frame(&first, WS_OP_TEXT, c->execute_msg.data ?: "", c->execute_msg.size) < 0)
                return -ENOMEM;
        return ws_relay_connect(c->ctx->event, m->resolver, url, head, &first, on_relay_ready, c, &c->relay);
}

static void on_ws_located(int error, ClusterPlace place, const char *node, const char *url, const char *tenant,
                          void *userdata) {
        WsConn *c = userdata;
        ExecRequest *req = TAKE_PTR(c->pending_req);
        int r;

        c->locate = NULL;
        if (place == CLUSTER_ELSEWHERE && c->who.forwarded) {
                /* Never passed on twice (see api_session_route()). */
                exec_request_free(req);
                ws_refuse(c, outcome_message(OUTCOME_SESSION_LOST));
                return;
        }
        if (error < 0 || place == CLUSTER_ELSEWHERE) {
                exec_request_free(req);
                r = error < 0 ? error : ws_relay_begin(c, url);
                if (r < 0) {
                        log_warning("cluster: cannot pass a WebSocket on to node %s: %s", node ?: "?", strerror(-r));
                        ws_refuse(c, error < 0 ? "Session directory unavailable" : outcome_message(OUTCOME_NODE_UNREACHABLE));
                }
                return;
        }
        if (place == CLUSTER_LOST) {
                exec_request_free(req);
                ws_refuse(c, outcome_message(OUTCOME_SESSION_LOST));
                return;
        }
        c->locating = false;
        ws_start_run(c, req);
        if (!c->released)
                handle_input(c);
}

/* A session held by another server of the cluster: look it up first (input waits). Returns
 * true when req was taken for that. */
static bool ws_route(WsConn *c, ExecRequest *req, const char *text, size_t len) {
        Manager *m = c->ctx->m;
        Session *s;

        if (!m->cluster || !req->session_id || session_lookup(m->sessions, &c->who, req->session_id, &s) >= 0)
                return false;
        if (buffer_append(&c->execute_msg, text, len) < 0 ||
            cluster_locate(m->cluster, req->session_id, c->who.tenant, c->who.type == AUTH_MASTER, true, on_ws_located, c,
                           &c->locate) < 0) {
                buffer_done(&c->execute_msg);
                return false;   /* served here, as on one server */
        }
        c->pending_req = req;
        c->locating = true;
        return true;
}

static void handle_message(WsConn *c, const char *text, size_t len) {
        _cleanup_json_ json_object *o = NULL;
        const char *type, *s;
        char buf[256];
        int r;

        if (json_parse_limited(text, len, JSON_DEPTH_MAX, &o) < 0 || !json_object_is_type(o, json_type_object)) {
                ws_send_event(c, "error", "Invalid JSON message");
                ws_close(c, WS_CLOSE_UNSUPPORTED, "Invalid JSON message");
                return;
        }
        if (json_get_string(o, "type", &type) < 0) {
                ws_send_event(c, "error", "Message has no \"type\"");
                return;
        }
        if (streq(type, "execute")) {
                _cleanup_(exec_request_freep) ExecRequest *req = NULL;
                _cleanup_free_ char *error = NULL;

                if (c->started) {
                        ws_send_event(c, "error", "Only one execution per connection");
                        return;
                }
                if (c->ctx->m->shutting_down) {
                        ws_send_event(c, "error", outcome_message(OUTCOME_SHUTTING_DOWN));
                        ws_close(c, WS_CLOSE_GOING_AWAY, "Server is shutting down");
                        return;
                }
                c->started = true;
                /* A refused request is an error event and the normal end of the exchange, as
                 * upstream does; close codes other than 1000 are for protocol violations. */
                if (json_get_bool(o, "interactive", &c->interactive) == -EINVAL) {
                        ws_send_event(c, "error", "\"interactive\" must be a boolean");
                        ws_close(c, WS_CLOSE_NORMAL, "Execution complete");
                        return;
                }
                r = api_request_parse(o, &c->ctx->m->policy, &req, &error);
                if (r < 0) {
                        ws_send_event(c, "error", r == -EINVAL && error ? error : "Invalid request");
                        ws_close(c, WS_CLOSE_NORMAL, "Execution complete");
                        return;
                }
                if (ws_route(c, req, text, len)) {
                        req = NULL;   /* kept by the lookup */
                        return;
                }
                ws_start_run(c, TAKE_PTR(req));
                return;
        }
        if (streq(type, "stdin")) {
                bool eof = false;
                size_t dl = 0;
                json_object *d;
                s = "";
                if (json_object_object_get_ex(o, "data", &d) && json_object_is_type(d, json_type_string)) {
                        s = json_object_get_string(d);
                        dl = (size_t) json_object_get_string_len(d);
                }
                (void) json_get_bool(o, "eof", &eof);
                if (!c->started) {
                        /* Kept (bounded) for an interactive run; upstream answers nothing here. */
                        if (c->early_stdin.size + dl <= WS_MAX_MESSAGE && !c->early_eof)
                                (void) buffer_append(&c->early_stdin, s, dl);
                        c->early_eof = c->early_eof || eof;
                        return;
                }
                if (!c->run || c->run_done)
                        return;   /* the run is over: input has nowhere to go */
                if (!c->interactive) {
                        ws_send_event(c, "error", "This run reads request.stdin only; send \"interactive\": true with \"execute\" for live input");
                        return;
                }
                if (run_stdin(c->run, s, dl, eof) < 0)
                        ws_send_event(c, "error", "The program's stdin is closed");
                return;
        }
        if (streq(type, "signal")) {
                int sig = json_get_string(o, "signal", &s) >= 0 ? parse_signal(s) : -EINVAL;
                if (sig < 0) {
                        ws_send_event(c, "error", "Unknown signal (expected SIGINT, SIGTERM or SIGKILL)");
                        return;
                }
                if (c->run && !c->run_done && run_signal(c->run, sig) < 0)
                        ws_send_event(c, "error", "No running program to signal");
                return;
        }
        snprintf(buf, sizeof(buf), "Unknown message type: %.200s", type);
        ws_send_event(c, "error", buf);
}

static void handle_input(WsConn *c) {
        size_t off = 0;

        while (!c->released && !c->locating && off < c->in.size) {
                WsFrame f;
                ssize_t k = ws_parse_frame((uint8_t *) c->in.data + off, c->in.size - off, WS_MAX_MESSAGE, &f);
                if (k == 0)
                        break;
                if (k == -EMSGSIZE) {
                        ws_close(c, WS_CLOSE_TOO_BIG, "Message too big");
                        return;
                }
                if (k < 0 || !f.masked) {
                        ws_close(c, WS_CLOSE_PROTOCOL_ERROR, f.masked || k < 0 ? "Protocol error" : "Client frames must be masked");
                        return;
                }
                off += (size_t) k;
                switch (f.opcode) {
                case WS_OP_PING:
                        ws_send(c, WS_OP_PONG, (const char *) f.payload, f.length);
                        break;
                case WS_OP_PONG:
                        break;
                case WS_OP_CLOSE:
                        if (!c->close_sent) {
                                uint16_t code = f.length >= 2 ? (uint16_t) ((f.payload[0] << 8) | f.payload[1]) : WS_CLOSE_NORMAL;
                                (void) code;
                                ws_close(c, WS_CLOSE_NORMAL, "Bye");
                        }
                        c->peer_gone = true;
                        ws_release(c);
                        return;
                default: {
                        int r;
                        if (c->close_sent)
                                break;
                        r = ws_message_feed(&c->msg, &f, WS_MAX_MESSAGE);
                        if (r == -EMSGSIZE) {
                                ws_close(c, WS_CLOSE_TOO_BIG, "Message too big");
                                return;
                        }
                        if (r < 0) {
                                ws_close(c, WS_CLOSE_PROTOCOL_ERROR, "Protocol error");
                                return;
                        }
                        if (r == 0)
                                break;
                        if (c->msg.opcode == WS_OP_BINARY) {
                                ws_message_reset(&c->msg);
                                ws_send_event(c, "error", "Invalid JSON message");
                                ws_close(c, WS_CLOSE_UNSUPPORTED, "Binary messages are not supported");
                                return;
                        }
                        {
                                Buffer m = c->msg.data;
                                c->msg.data = (Buffer) {};
                                c->msg.opcode = 0;
                                handle_message(c, m.data ?: "", m.size);
                                buffer_done(&m);
                        }
                        break;
                }
                }
        }
        if (off > 0 && !c->released) {
                memmove(c->in.data, c->in.data + off, c->in.size - off);
                c->in.size -= off;
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        WsConn *c = userdata;

        if (revents & EPOLLOUT)
                ws_flush(c);
        if (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                char buf[65536];
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n <= 0) {
                        /* The client vanished: cancel the run and free its sandbox. */
                        c->peer_gone = true;
                        ws_release(c);
                        return 0;
                }
                if (c->in.size + (size_t) n > WS_MAX_MESSAGE + 64) {
                        ws_close(c, WS_CLOSE_TOO_BIG, "Message too big");
                        return 0;
                }
                (void) buffer_append(&c->in, buf, (size_t) n);
                handle_input(c);
        }
        if (c->peer_gone && !c->released)
                ws_release(c);
        return 0;
}

static void on_upgraded(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
        WsConn *c = cls;

        c->fd = sock;
        c->urh = urh;
        (void) fd_nonblock(sock, true);
        if (extra_in_size > 0)
                (void) buffer_append(&c->in, extra_in, extra_in_size);
        if (sd_event_add_io(c->ctx->event, &c->io, sock, EPOLLIN | EPOLLRDHUP, on_io, c) < 0) {
                ws_release(c);
                return;
        }
        (void) sd_event_source_set_description(c->io, "ws-io");
        if (c->in.size > 0)
                handle_input(c);
}

static bool header_has_token(const char *v, const char *token) {
        size_t tl = strlen(token);
        for (const char *p = v; p && *p;) {
                p += strspn(p, " \t,");
                size_t n = strcspn(p, ",");
                size_t m = n;
                while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
                        m--;
                if (m == tl && strncasecmp(p, token, tl) == 0)
                        return true;
                p += n;
        }
        return false;
}

int api_execute_ws(HttpRequest *r, void *userdata) {
        ApiContext *ctx = userdata;
        const char *upgrade = http_request_header(r, "Upgrade");
        const char *connection = http_request_header(r, "Connection");
        const char *version = http_request_header(r, "Sec-WebSocket-Version");
        const char *key = http_request_header(r, "Sec-WebSocket-Key");
        struct MHD_Response *resp;
        char accept[29];
        WsConn *c;

        if (!upgrade || strcasecmp(upgrade, "websocket") != 0 || !connection || !header_has_token(connection, "upgrade"))
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Expected a WebSocket upgrade");
        if (!version || !streq(version, "13")) {
                resp = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
                if (!resp)
                        return -ENOMEM;
                MHD_add_response_header(resp, "Sec-WebSocket-Version", "13");
                return http_reply_response(r, MHD_HTTP_UPGRADE_REQUIRED, resp);
        }
        if (!key || ws_accept_key(key, accept) < 0)
                return http_reply_error(r, MHD_HTTP_BAD_REQUEST, "Missing or invalid Sec-WebSocket-Key");
        if (ctx->m->shutting_down)
                return api_reply_outcome(r, OUTCOME_SHUTTING_DOWN, NULL);

        c = calloc(1, sizeof(WsConn));
        if (!c)
                return -ENOMEM;
        c->ctx = ctx;
        c->server = http_request_server(r);
        c->who = *http_request_auth(r);
        snprintf(c->remote, sizeof(c->remote), "%s", api_request_remote(r));
        c->fd = -EBADF;
        resp = MHD_create_response_for_upgrade(on_upgraded, c);
        if (!resp) {
                free(c);
                return -ENOMEM;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
        MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
        return http_reply_response(r, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
}
