/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/proxy.h"
#include "shared/list.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"

#define HEAD_MAX (16 * 1024)
/* The bytes the daemon itself holds per connection: the request going upstream (its head, as
 * rewritten, and what came with it) and an answer of its own; the rest moves through pipes. */
#define C2U_BUF (2 * HEAD_MAX)
#define U2C_BUF 1024
#define PIPE_CAP (256 * 1024)
#define HEAD_TIMEOUT_USEC (10 * USEC_PER_SEC)

typedef enum ConnState {
        CONN_HEAD,          /* reading the request head */
        CONN_RESOLVING,
        CONN_CONNECTING,
        CONN_RELAY,
        CONN_CLOSING,       /* an error answer goes out, then the connection closes */
} ConnState;

typedef struct Conn Conn;

/* One direction of the relay: bytes move from src to dst through a pipe with splice(), never
 * through our memory; whatever sits in the user-space buffer goes first. */
typedef struct Flow {
        int pipe[2];
        size_t piped;               /* bytes in the pipe */
        bool eof;                   /* src is done (end of file or an error) */
        bool shut;                  /* dst's write side was shut down */
        uint64_t limit;             /* bytes src may still send (a plain request's body), else UINT64_MAX */
} Flow;

struct Proxy {
        sd_event *event;
        Resolver *resolver;
        ProxyConfig config;
        int listen_fd;
        sd_event_source *listen_source;
        Conn *conns;
        unsigned n_conns;
        uint64_t bytes_in, bytes_out;
        bool over_budget;
        ProxyLogEntry *log;
        size_t n_log;
};

struct Conn {
        Proxy *proxy;
        Conn *prev, *next;
        ConnState state;
        int cfd, ufd;
        sd_event_source *csrc, *usrc, *timer;
        ResolveQuery *query;
        char head[HEAD_MAX];
        size_t head_len;
        char method[16];
        char *host;
        unsigned port;
        char *path;
        bool is_connect;
        uint64_t body_left;         /* plain HTTP: request body bytes still to forward */
        char *c2u;                  /* to the upstream server: the head, early bytes */
        size_t c2u_len;
        char *u2c;                  /* to the program: an answer of ours, "200 Connection established" */
        size_t u2c_len;
        Flow up, down;              /* the relay, once connected: program -> server, server -> program */
        bool hello_checked;         /* a tunnel's TLS server name passed the rules (or there is none) */
        ssize_t log_index;          /* -1: none */
        uint64_t start_usec;
};

static void conn_free(Conn *c);
static void conn_update(Conn *c);

static uint64_t mono(void) {
        return now_usec(CLOCK_MONOTONIC);
}

static ProxyLogEntry *log_entry(Conn *c) {
        return c->log_index >= 0 ? &c->proxy->log[c->log_index] : NULL;
}

static void log_add(Conn *c, bool allowed) {
        Proxy *p = c->proxy;
        ProxyLogEntry *e, *n;

        if (!p->config.log || p->n_log >= PROXY_LOG_MAX || c->log_index >= 0)
                return;
        n = realloc(p->log, (p->n_log + 1) * sizeof(ProxyLogEntry));
        if (!n)
                return;
        p->log = n;
        e = &p->log[p->n_log];
        *e = (ProxyLogEntry) { .timestamp_usec = now_usec(CLOCK_REALTIME), .allowed = allowed };
        snprintf(e->method, sizeof(e->method), "%s", c->method);
        e->host = strdup(c->host ?: "");
        if (!c->is_connect && c->path)
                e->path = strndup(c->path, strcspn(c->path, "?#"));
        c->log_index = (ssize_t) p->n_log++;
}

static void log_close(Conn *c) {
        ProxyLogEntry *e = log_entry(c);
        if (e)
                e->duration_ms = (mono() - c->start_usec) / USEC_PER_MSEC;
}

/* Answers with status and a one-line reason (curl, pip and npm print it), then closes. */
static void conn_reply(Conn *c, unsigned status, const char *reason, const char *fmt, ...) _printf_(4, 5);
static void conn_reply(Conn *c, unsigned status, const char *reason, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        n = snprintf(c->u2c, U2C_BUF,
                     "HTTP/1.1 %u %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                     status, reason, strlen(msg) + 1, msg);
        c->u2c_len = n > 0 ? MIN((size_t) n, (size_t) U2C_BUF - 1) : 0;
        c->state = CONN_CLOSING;
        resolve_query_cancel(c->query);
        c->query = NULL;
        c->timer = sd_event_source_disable_unref(c->timer);
        c->usrc = sd_event_source_disable_unref(c->usrc);
        c->ufd = safe_close(c->ufd);
        log_close(c);
        conn_update(c);
}

static void conn_block(Conn *c, const char *reason) {
        Proxy *p = c->proxy;
        ProxyLogEntry *e;

        log_add(c, false);
        e = log_entry(c);
        if (e)
                e->allowed = false;
        if (p->config.on_block)
                p->config.on_block(c->method, c->host ?: "", c->port, reason, p->config.userdata);
        conn_reply(c, 403, "Forbidden", "isol8: %s %s:%u blocked: %s", c->method, c->host ?: "?", c->port, reason);
}

static void set_events(sd_event_source *s, uint32_t events) {
        if (!s)
                return;
        if (events) {
                (void) sd_event_source_set_io_events(s, events);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        } else
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

static bool flow_drained(const Flow *f, size_t buffered) {
        return buffered == 0 && f->piped == 0;
}

static bool flow_wants_read(const Flow *f) {
        return !f->eof && f->piped < PIPE_CAP && f->limit > 0;
}

static void conn_update(Conn *c) {
        uint32_t ce = 0, ue = 0;

        if (c->state == CONN_HEAD && c->head_len < HEAD_MAX)
                ce |= EPOLLIN;
        if (c->state == CONN_RELAY) {
                if (!c->hello_checked || flow_wants_read(&c->up))
                        ce |= EPOLLIN;
                if (flow_wants_read(&c->down))
                        ue |= EPOLLIN;
                if (c->hello_checked && !flow_drained(&c->up, c->c2u_len))
                        ue |= EPOLLOUT;
                if (!flow_drained(&c->down, c->u2c_len))
                        ce |= EPOLLOUT;
        } else if (c->u2c_len > 0)
                ce |= EPOLLOUT;
        if (c->state == CONN_CONNECTING)
                ue |= EPOLLOUT;
        set_events(c->csrc, ce);
        set_events(c->usrc, ue);
}

/* What is left to do after each step: half-closes, the end. */
static void conn_progress(Conn *c) {
        if (c->state == CONN_CLOSING && c->u2c_len == 0) {
                conn_free(c);
                return;
        }
        if (c->state == CONN_RELAY) {
                /* The program finished sending through a tunnel: pass the half-close on. */
                if (c->is_connect && c->up.eof && flow_drained(&c->up, c->c2u_len) && !c->up.shut) {
                        (void) shutdown(c->ufd, SHUT_WR);
                        c->up.shut = true;
                }
                if (c->down.eof && flow_drained(&c->down, c->u2c_len)) {
                        conn_free(c);
                        return;
                }
        }
        conn_update(c);
}

/* Bytes that reached their destination; false once the run's budget is used up. */
static bool account(Conn *c, size_t n, bool in) {
        Proxy *p = c->proxy;
        uint64_t max = p->config.policy->max_bytes;

        if (in)
                p->bytes_in += n;
        else
                p->bytes_out += n;
        if (max > 0 && p->bytes_in + p->bytes_out >= max) {
                p->over_budget = true;
                return false;
        }
        return true;
}

/* How much more the run may move: reads are cut to it, so the budget holds to the byte. */
static size_t budget_left(Proxy *p, size_t want) {
        uint64_t max = p->config.policy->max_bytes, used = p->bytes_in + p->bytes_out;
        for (Conn *c = p->conns; c; c = c->next)
                used += c->up.piped + c->down.piped;
        if (max == 0)
                return want;
        return used >= max ? 0 : (size_t) MIN((uint64_t) want, max - used);
}

/* src -> pipe: the bytes moved. */
static size_t flow_read(Conn *c, Flow *f, int src) {
        size_t want = budget_left(c->proxy, (size_t) MIN((uint64_t) (PIPE_CAP - f->piped), f->limit));
        ssize_t n;

        if (want == 0) {
                if (c->proxy->over_budget || budget_left(c->proxy, 1) == 0)
                        f->eof = true;
                return 0;
        }
        n = splice(src, NULL, f->pipe[1], NULL, want, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                f->eof = true;
        if (n <= 0)
                return 0;
        f->piped += (size_t) n;
        if (f->limit != UINT64_MAX)
                f->limit -= (uint64_t) n;
        return (size_t) n;
}

/* buffer, then pipe -> dst: the bytes moved, or -1 when the connection was freed. */
static ssize_t flow_write(Conn *c, Flow *f, int dst, char *buf, size_t *len, bool in) {
        ssize_t n;

        if (*len > 0) {
                n = send(dst, buf, *len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        conn_free(c);
                        return -1;
                }
                if (n <= 0)
                        return 0;
                memmove(buf, buf + n, *len - (size_t) n);
                *len -= (size_t) n;
                if (!account(c, (size_t) n, in)) {
                        conn_free(c);
                        return -1;
                }
                return n;
        }
        if (f->piped == 0)
                return 0;
        n = splice(f->pipe[0], NULL, dst, NULL, f->piped, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
                conn_free(c);
                return -1;
        }
        if (n <= 0)
                return 0;
        f->piped -= (size_t) n;
        if (!account(c, (size_t) n, in) && f->piped == 0 && budget_left(c->proxy, 1) == 0) {
                conn_free(c);
                return -1;
        }
        return n;
}

/* Moves what can move now in both directions, without waiting for the next readiness event
 * when a read made room or a write made data: one wake-up carries a transfer a long way.
 * Returns false when the connection was freed. */
/* The server name of a TLS ClientHello in one record (RFC 8446 4.1.2, RFC 6066 3), copied
 * into name; false when there is none or the record is not one. */
static bool client_hello_sni(const uint8_t *p, size_t n, char *name, size_t size) {
        size_t off, len, ext_end;

#define NEED(k) do { if (off + (k) > n) return false; } while (0)
        off = 0;
        NEED(4);
        if (p[0] != 1)                                  /* ClientHello */
                return false;
        off = 4 + 2 + 32;                               /* header, legacy_version, random */
        NEED(1);
        off += 1 + p[off];                              /* session id */
        NEED(2);
        off += 2 + ((size_t) p[off] << 8 | p[off + 1]); /* cipher suites */
        NEED(1);
        off += 1 + p[off];                              /* compression methods */
        NEED(2);
        ext_end = off + 2 + ((size_t) p[off] << 8 | p[off + 1]);
        off += 2;
        if (ext_end > n)
                return false;
        while (off + 4 <= ext_end) {
                unsigned type = (unsigned) p[off] << 8 | p[off + 1];
                len = (size_t) p[off + 2] << 8 | p[off + 3];
                off += 4;
                if (off + len > ext_end)
                        return false;
                if (type == 0 && len >= 5 && p[off + 2] == 0) {       /* server_name, host_name */
                        size_t l = (size_t) p[off + 3] << 8 | p[off + 4];
                        if (l == 0 || 5 + l > len || l >= size)
                                return false;
                        memcpy(name, p + off + 5, l);
                        name[l] = 0;
                        return true;
                }
                off += len;
        }
        return false;
#undef NEED
}

/* A tunnel's first bytes, kept back until they are known: a TLS ClientHello's server name must
 * pass the same rules as the CONNECT host (else a name hosted on the same address, a CDN's,
 * could be asked for through an allowed one). 1: go on, 0: wait for more, -1: freed. */
static int check_tunnel_start(Conn *c) {
        const uint8_t *b = (const uint8_t *) c->c2u;
        char sni[256];
        const char *reason;
        size_t rec;

        /* What came with the CONNECT first, then more until the record is whole. */
        for (;;) {
                if (c->c2u_len >= 1 && b[0] != 0x16) {  /* not TLS: nothing to read a name from */
                        c->hello_checked = true;
                        return 1;
                }
                rec = c->c2u_len >= 5 ? ((size_t) b[3] << 8 | b[4]) : SIZE_MAX;
                if (rec != SIZE_MAX && (c->c2u_len >= 5 + rec || c->c2u_len >= C2U_BUF))
                        break;
                ssize_t n = recv(c->cfd, c->c2u + c->c2u_len, C2U_BUF - c->c2u_len, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n <= 0) {
                        c->up.eof = true;
                        c->hello_checked = true;
                        return 1;
                }
                c->c2u_len += (size_t) n;
        }
        c->hello_checked = true;
        if (c->c2u_len < 5 + rec || !client_hello_sni(b + 5, rec, sni, sizeof(sni)))
                return 1;
        for (char *s = sni; *s; s++)
                *s = (char) tolower((unsigned char) *s);
        if (streq(sni, c->host))
                return 1;
        if (egress_host_valid(sni) && proxy_host_allowed(&c->proxy->config, sni, c->port, &reason))
                return 1;
        {
                Proxy *p = c->proxy;
                ProxyLogEntry *e = log_entry(c);
                char why[400];
                snprintf(why, sizeof(why), "the TLS server name \"%.253s\" is not the host asked for, and not allowed", sni);
                if (e)
                        e->allowed = false;
                if (p->config.on_block)
                        p->config.on_block(c->method, c->host, c->port, why, p->config.userdata);
                conn_free(c);
                return -1;
        }
}

static bool conn_pump(Conn *c) {
        for (unsigned i = 0; i < 64; i++) {
                size_t moved = 0;
                ssize_t w;
                if (flow_wants_read(&c->down))
                        moved += flow_read(c, &c->down, c->ufd);
                w = flow_write(c, &c->down, c->cfd, c->u2c, &c->u2c_len, true);
                if (w < 0)
                        return false;
                moved += (size_t) w;
                if (!c->hello_checked) {
                        int r = check_tunnel_start(c);
                        if (r < 0)
                                return false;
                        if (r == 0)
                                break;
                }
                if (flow_wants_read(&c->up))
                        moved += flow_read(c, &c->up, c->cfd);
                w = flow_write(c, &c->up, c->ufd, c->c2u, &c->c2u_len, false);
                if (w < 0)
                        return false;
                moved += (size_t) w;
                if (moved == 0)
                        break;
        }
        return true;
}

static int flow_open(Flow *f, uint64_t limit) {
        if (pipe2(f->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        (void) fcntl(f->pipe[1], F_SETPIPE_SZ, PIPE_CAP);
        f->limit = limit;
        return 0;
}

static void flow_close(Flow *f) {
        f->pipe[0] = safe_close(f->pipe[0]);
        f->pipe[1] = safe_close(f->pipe[1]);
}

/* ---- the request head ---- */

static bool token_char(char ch) {
        return isalnum((unsigned char) ch) || strchr("!#$%&'*+-.^_`|~", ch);
}

static bool header_is(const char *line, size_t name_len, const char *name) {
        return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/* host[:port] or [v6]:port into c->host/c->port; port_required for CONNECT. */
static int parse_authority(Conn *c, const char *s, size_t len, bool port_required, unsigned default_port) {
        const char *host, *colon = NULL;
        size_t host_len;
        unsigned long port = default_port;

        if (len == 0 || memchr(s, '@', len))
                return -EINVAL;
        if (s[0] == '[') {
                const char *end = memchr(s, ']', len);
                if (!end)
                        return -EINVAL;
                host = s + 1;
                host_len = (size_t) (end - host);
                if ((size_t) (end + 1 - s) < len) {
                        if (end[1] != ':')
                                return -EINVAL;
                        colon = end + 1;
                }
        } else {
                colon = memchr(s, ':', len);
                host = s;
                host_len = colon ? (size_t) (colon - s) : len;
        }
        if (colon) {
                char buf[8];
                size_t n = len - (size_t) (colon + 1 - s);
                char *end;
                if (n == 0 || n >= sizeof(buf))
                        return -EINVAL;
                memcpy(buf, colon + 1, n);
                buf[n] = 0;
                for (size_t i = 0; i < n; i++)
                        if (!isdigit((unsigned char) buf[i]))
                                return -EINVAL;
                port = strtoul(buf, &end, 10);
                if (port < 1 || port > 65535)
                        return -EINVAL;
        } else if (port_required)
                return -EINVAL;
        if (host_len == 0 || host_len > 253)
                return -EINVAL;
        c->host = strndup(host, host_len);
        if (!c->host)
                return -ENOMEM;
        for (char *h = c->host; *h; h++)
                *h = (char) tolower((unsigned char) *h);
        if (!egress_host_valid(c->host))
                return -EINVAL;
        c->port = (unsigned) port;
        return 0;
}

/* Checks the head strictly (one request per connection, no ambiguity about where it ends) and
 * makes what goes upstream. Returns 0, or answers the program itself and returns < 0. */
static int parse_head(Conn *c, size_t head_end) {
        char *line_end, *sp1, *sp2, *target, *p;
        size_t target_len;
        bool have_length = false;
        uint64_t length = 0;
        Buffer out = {};
        int r;

        /* Only CRLF line ends, no other control bytes. */
        for (size_t i = 0; i < head_end; i++) {
                unsigned char ch = (unsigned char) c->head[i];
                if (ch == '\r' && (i + 1 >= head_end || c->head[i + 1] != '\n'))
                        goto bad;
                if (ch == '\n' && (i == 0 || c->head[i - 1] != '\r'))
                        goto bad;
                if ((ch < 0x20 && ch != '\r' && ch != '\n' && ch != '\t') || ch == 0x7f)
                        goto bad;
        }
        c->head[head_end - 2] = 0;      /* the last CRLF of the blank line */
        line_end = strstr(c->head, "\r\n");
        if (line_end)
                *line_end = 0;
        sp1 = strchr(c->head, ' ');
        if (!sp1 || (size_t) (sp1 - c->head) >= sizeof(c->method) || sp1 == c->head)
                goto bad;
        sp2 = strchr(sp1 + 1, ' ');
        if (!sp2 || strchr(sp2 + 1, ' ') || (!streq(sp2 + 1, "HTTP/1.1") && !streq(sp2 + 1, "HTTP/1.0")))
                goto bad;
        memcpy(c->method, c->head, (size_t) (sp1 - c->head));
        c->method[sp1 - c->head] = 0;
        for (char *m = c->method; *m; m++)
                if (!token_char(*m))
                        goto bad;
        target = sp1 + 1;
        target_len = (size_t) (sp2 - target);
        c->is_connect = streq(c->method, "CONNECT");
        if (c->is_connect) {
                r = parse_authority(c, target, target_len, true, 0);
                if (r < 0)
                        goto bad_target;
        } else {
                const char *auth, *path;
                if (target_len > 8 && strncasecmp(target, "https://", 8) == 0) {
                        conn_reply(c, 400, "Bad Request", "isol8: https:// URLs go through CONNECT (use HTTPS_PROXY)");
                        return -EINVAL;
                }
                if (target_len <= 7 || strncasecmp(target, "http://", 7) != 0) {
                        conn_reply(c, 400, "Bad Request", "isol8: this is a forward proxy: the request needs an absolute http:// URL");
                        return -EINVAL;
                }
                auth = target + 7;
                path = memchr(auth, '/', target_len - 7);
                if (!path)
                        path = memchr(auth, '?', target_len - 7);
                r = parse_authority(c, auth, path ? (size_t) (path - auth) : target_len - 7, false, 80);
                if (r < 0)
                        goto bad_target;
                if (path && *path == '?')
                        r = asprintf(&c->path, "/%.*s", (int) (target + target_len - path), path);
                else
                        c->path = path ? strndup(path, (size_t) (target + target_len - path)) : strdup("/");
                if (!c->path || r < 0)
                        goto bad;
        }

        /* The headers: the hop-by-hop ones and every Proxy-* stay here. */
        if (!c->is_connect) {
                if (buffer_printf(&out, "%s %s HTTP/1.1\r\n", c->method, c->path) < 0)
                        goto nomem;
                if (strchr(c->host, ':') ? buffer_printf(&out, "Host: [%s]", c->host) < 0 : buffer_printf(&out, "Host: %s", c->host) < 0)
                        goto nomem;
                if ((c->port != 80 ? buffer_printf(&out, ":%u\r\n", c->port) : buffer_printf(&out, "\r\n")) < 0)
                        goto nomem;
        }
        for (p = line_end ? line_end + 2 : NULL; p && *p;) {
                char *e = strstr(p, "\r\n"), *colon;
                size_t name_len;
                if (e)
                        *e = 0;
                colon = strchr(p, ':');
                if (!colon || colon == p)
                        goto bad;
                name_len = (size_t) (colon - p);
                for (size_t i = 0; i < name_len; i++)
                        if (!token_char(p[i]))
                                goto bad;   /* obs-fold, spaces before the colon, ... */
                if (header_is(p, name_len, "Content-Length")) {
                        const char *v = colon + 1;
                        char *end;
                        while (*v == ' ' || *v == '\t')
                                v++;
                        if (have_length || !isdigit((unsigned char) *v))
                                goto bad;
                        errno = 0;
                        length = strtoull(v, &end, 10);
                        while (*end == ' ' || *end == '\t')
                                end++;
                        if (errno || *end)
                                goto bad;
                        have_length = true;
                } else if (header_is(p, name_len, "Transfer-Encoding")) {
                        if (!c->is_connect) {
                                buffer_done(&out);
                                conn_reply(c, 501, "Not Implemented",
                                           "isol8: request bodies with Transfer-Encoding are not forwarded; send Content-Length or use HTTPS");
                                return -EINVAL;
                        }
                } else if (!c->is_connect && !header_is(p, name_len, "Host") && !header_is(p, name_len, "Connection") &&
                           !header_is(p, name_len, "Keep-Alive") && !header_is(p, name_len, "TE") &&
                           !header_is(p, name_len, "Trailer") && !header_is(p, name_len, "Upgrade") &&
                           !(name_len >= 6 && strncasecmp(p, "Proxy-", 6) == 0)) {
                        if (buffer_printf(&out, "%s\r\n", p) < 0)
                                goto nomem;
                }
                p = e ? e + 2 : NULL;
        }
        if (!c->is_connect) {
                /* The length as it was checked, in one form. */
                if (have_length && buffer_printf(&out, "Content-Length: %" PRIu64 "\r\n", length) < 0)
                        goto nomem;
                if (buffer_printf(&out, "Connection: close\r\n\r\n") < 0)
                        goto nomem;
                if (out.size > C2U_BUF)
                        goto bad;
                memcpy(c->c2u, out.data, out.size);
                c->c2u_len = out.size;
                c->body_left = length;
        }
        buffer_done(&out);
        /* What came after the head: a tunnel's first bytes, or the body (never more than its
         * length: a second request behind it is not ours to forward). */
        {
                size_t extra = c->head_len - head_end;
                if (!c->is_connect)
                        extra = (size_t) MIN((uint64_t) extra, c->body_left);
                if (extra > C2U_BUF - c->c2u_len)
                        goto bad;
                memcpy(c->c2u + c->c2u_len, c->head + head_end, extra);
                c->c2u_len += extra;
                if (!c->is_connect)
                        c->body_left -= extra;
        }
        return 0;

nomem:
        buffer_done(&out);
        conn_reply(c, 500, "Internal Server Error", "isol8: out of memory");
        return -ENOMEM;
bad_target:
        buffer_done(&out);
        conn_reply(c, 400, "Bad Request", "isol8: bad request target (a host name or address%s)", c->is_connect ? " and a port" : "");
        return -EINVAL;
bad:
        buffer_done(&out);
        conn_reply(c, 400, "Bad Request", "isol8: malformed request");
        return -EINVAL;
}

bool proxy_host_allowed(const ProxyConfig *cf, const char *host, unsigned port, const char **ret_reason) {
        const EgressPolicy *p = cf->policy;

        if (!egress_port_allowed(p, port)) {
                *ret_reason = "the port is not in the server's network.allowedPorts";
                return false;
        }
        if (!cf->own_rules_only && !egress_host_allowed(&p->whitelist, &p->blacklist, host)) {
                *ret_reason = "the host is not allowed by the server's network rules";
                return false;
        }
        if (!egress_host_allowed(&cf->whitelist, &cf->blacklist, host)) {
                *ret_reason = "the host is not allowed by this run's networkFilter";
                return false;
        }
        return true;
}

/* ---- connecting ---- */

static int on_upstream(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Conn *c = userdata;
        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->state == CONN_HEAD) {
                conn_reply(c, 408, "Request Timeout", "isol8: the request head did not come in time");
                return 0;
        }
        if (c->state == CONN_RESOLVING) {
                resolve_query_cancel(c->query);
                c->query = NULL;
        }
        conn_reply(c, 504, "Gateway Timeout", "isol8: %s:%u did not answer in time", c->host, c->port);
        return 0;
}

static void arm_timer(Conn *c, uint64_t usec) {
        c->timer = sd_event_source_disable_unref(c->timer);
        if (sd_event_add_time_relative(c->proxy->event, &c->timer, CLOCK_MONOTONIC, usec, 10 * USEC_PER_MSEC, on_timer, c) >= 0)
                (void) sd_event_source_set_description(c->timer, "proxy-timer");
}

static void conn_connect(Conn *c, const struct sockaddr *sa, socklen_t len) {
        int fd, r;

        fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                conn_reply(c, 502, "Bad Gateway", "isol8: cannot connect to %s:%u: %s", c->host, c->port, strerror(errno));
                return;
        }
        c->ufd = fd;
        /* The address that was checked, and no other. */
        if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
                conn_reply(c, 502, "Bad Gateway", "isol8: cannot connect to %s:%u: %s", c->host, c->port, strerror(errno));
                return;
        }
        r = sd_event_add_io(c->proxy->event, &c->usrc, fd, EPOLLOUT, on_upstream, c);
        if (r < 0) {
                conn_reply(c, 500, "Internal Server Error", "isol8: %s", strerror(-r));
                return;
        }
        (void) sd_event_source_set_description(c->usrc, "proxy-upstream");
        c->state = CONN_CONNECTING;
        conn_update(c);
}

static void on_resolved(int error, const struct addrinfo *ai, void *userdata) {
        Conn *c = userdata;
        struct sockaddr_storage ss;
        char text[INET6_ADDRSTRLEN];
        socklen_t len;

        c->query = NULL;
        if (error != 0 || !ai) {
                conn_reply(c, 502, "Bad Gateway", "isol8: cannot resolve %s: %s", c->host, gai_strerror(error));
                return;
        }
        if (egress_pick_address(c->proxy->config.policy, ai, c->port, &ss, &len, text)) {
                conn_connect(c, (struct sockaddr *) &ss, len);
                return;
        }
        {
                char reason[128];
                snprintf(reason, sizeof(reason), "the host resolves to a private or special address (%s)", text);
                conn_block(c, reason);
        }
}

static void conn_decide(Conn *c) {
        struct sockaddr_storage ss;
        const char *reason;
        socklen_t len;

        if (c->proxy->over_budget) {
                conn_block(c, "the run's network byte limit is used up");
                return;
        }
        if (!proxy_host_allowed(&c->proxy->config, c->host, c->port, &reason)) {
                conn_block(c, reason);
                return;
        }
        /* An address literal needs no lookup; the same address rules apply. */
        if (egress_address_literal(c->host, c->port, &ss, &len) < 0) {
                int r = resolver_query(c->proxy->resolver, c->host, on_resolved, c, &c->query);
                if (r < 0) {
                        conn_reply(c, 502, "Bad Gateway", "isol8: cannot resolve %s: %s", c->host, strerror(-r));
                        return;
                }
                log_add(c, true);
                c->state = CONN_RESOLVING;
                arm_timer(c, c->proxy->config.policy->connect_timeout_ms * USEC_PER_MSEC);
                conn_update(c);
                return;
        }
        if (!egress_address_allowed(c->proxy->config.policy, (struct sockaddr *) &ss)) {
                conn_block(c, "a private or special address");
                return;
        }
        log_add(c, true);
        arm_timer(c, c->proxy->config.policy->connect_timeout_ms * USEC_PER_MSEC);
        conn_connect(c, (struct sockaddr *) &ss, len);
}

/* ---- moving bytes ---- */

static int on_upstream(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;

        if (c->state == CONN_CONNECTING) {
                int err = 0, r;
                socklen_t l = sizeof(err);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                        err = errno;
                if (err != 0) {
                        conn_reply(c, 502, "Bad Gateway", "isol8: cannot connect to %s:%u: %s", c->host, c->port, strerror(err));
                        return 0;
                }
                c->timer = sd_event_source_disable_unref(c->timer);
                r = flow_open(&c->up, c->is_connect ? UINT64_MAX : c->body_left);
                if (r >= 0)
                        r = flow_open(&c->down, UINT64_MAX);
                if (r < 0) {
                        conn_reply(c, 500, "Internal Server Error", "isol8: %s", strerror(-r));
                        return 0;
                }
                c->state = CONN_RELAY;
                c->hello_checked = !c->is_connect;
                if (c->is_connect) {
                        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
                        memcpy(c->u2c, ok, sizeof(ok) - 1);
                        c->u2c_len = sizeof(ok) - 1;
                }
                if (conn_pump(c))
                        conn_progress(c);
                return 0;
        }
        if (c->state != CONN_RELAY)
                return 0;
        if (conn_pump(c))
                conn_progress(c);
        return 0;
}

static int on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;

        if (c->state == CONN_RELAY) {
                if (conn_pump(c))
                        conn_progress(c);
                return 0;
        }
        if ((revents & EPOLLOUT) && c->u2c_len > 0) {
                ssize_t n = send(fd, c->u2c, c->u2c_len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        conn_free(c);
                        return 0;
                }
                if (n > 0) {
                        memmove(c->u2c, c->u2c + n, c->u2c_len - (size_t) n);
                        c->u2c_len -= (size_t) n;
                }
        }
        if (c->state == CONN_HEAD && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                ssize_t n = recv(fd, c->head + c->head_len, HEAD_MAX - c->head_len, MSG_DONTWAIT);
                char *end;
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                        conn_free(c);
                        return 0;
                }
                if (n > 0)
                        c->head_len += (size_t) n;
                end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
                if (end) {
                        c->timer = sd_event_source_disable_unref(c->timer);
                        if (parse_head(c, (size_t) (end - c->head) + 4) >= 0)
                                conn_decide(c);
                        return 0;
                }
                if (c->head_len >= HEAD_MAX) {
                        conn_reply(c, 431, "Request Header Fields Too Large", "isol8: the request head is over %d bytes", HEAD_MAX);
                        return 0;
                }
        } else if (c->state == CONN_CLOSING && (revents & (EPOLLHUP | EPOLLERR))) {
                conn_free(c);
                return 0;
        }
        conn_progress(c);
        return 0;
}

static void conn_free(Conn *c) {
        Proxy *p = c->proxy;

        log_close(c);
        resolve_query_cancel(c->query);
        sd_event_source_disable_unref(c->csrc);
        sd_event_source_disable_unref(c->usrc);
        sd_event_source_disable_unref(c->timer);
        safe_close(c->cfd);
        safe_close(c->ufd);
        flow_close(&c->up);
        flow_close(&c->down);
        LIST_REMOVE(p->conns, c);
        p->n_conns--;
        free(c->host);
        free(c->path);
        free(c->c2u);
        free(c->u2c);
        free(c);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Proxy *p = userdata;

        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                Conn *c;

                if (cfd < 0)
                        return 0;
                if (p->n_conns >= p->config.policy->max_connections) {
                        static const char busy[] =
                                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 58\r\nConnection: close\r\n\r\n"
                                "isol8: too many connections at once through the proxy\n\n\n\n";
                        (void) !send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                        close(cfd);
                        continue;
                }
                c = calloc(1, sizeof(Conn));
                if (!c || !(c->c2u = malloc(C2U_BUF)) || !(c->u2c = malloc(U2C_BUF))) {
                        if (c) {
                                free(c->c2u);
                                free(c);
                        }
                        close(cfd);
                        return 0;
                }
                c->proxy = p;
                c->cfd = cfd;
                c->ufd = -EBADF;
                c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -EBADF;
                c->log_index = -1;
                c->start_usec = mono();
                LIST_PREPEND(p->conns, c);
                p->n_conns++;
                if (sd_event_add_io(p->event, &c->csrc, cfd, EPOLLIN, on_client, c) < 0) {
                        conn_free(c);
                        continue;
                }
                (void) sd_event_source_set_description(c->csrc, "proxy-client");
                arm_timer(c, HEAD_TIMEOUT_USEC);
        }
}

int proxy_new(sd_event *event, Resolver *resolver, ProxyConfig *config, int listen_fd, Proxy **ret) {
        Proxy *p = calloc(1, sizeof(Proxy));
        int r;

        if (!p) {
                safe_close(listen_fd);
                regex_list_done(&config->whitelist);
                regex_list_done(&config->blacklist);
                return -ENOMEM;
        }
        p->event = event;
        p->resolver = resolver;
        p->config = *config;
        *config = (ProxyConfig) {};
        p->listen_fd = listen_fd;
        r = sd_event_add_io(event, &p->listen_source, listen_fd, EPOLLIN, on_accept, p);
        if (r < 0) {
                proxy_free(p);
                return r;
        }
        (void) sd_event_source_set_description(p->listen_source, "proxy-listen");
        *ret = p;
        return 0;
}

Proxy *proxy_free(Proxy *p) {
        if (!p)
                return NULL;
        while (p->conns)
                conn_free(p->conns);
        sd_event_source_disable_unref(p->listen_source);
        safe_close(p->listen_fd);
        regex_list_done(&p->config.whitelist);
        regex_list_done(&p->config.blacklist);
        for (size_t i = 0; i < p->n_log; i++) {
                free(p->log[i].host);
                free(p->log[i].path);
        }
        free(p->log);
        free(p);
        return NULL;
}

void proxy_bytes(Proxy *p, uint64_t *ret_in, uint64_t *ret_out) {
        *ret_in = p->bytes_in;
        *ret_out = p->bytes_out;
}

const ProxyLogEntry *proxy_log(Proxy *p, size_t *ret_n) {
        for (Conn *c = p->conns; c; c = c->next)
                log_close(c);
        *ret_n = p->n_log;
        return p->log;
}

unsigned proxy_connections(Proxy *p) {
        return p->n_conns;
}
