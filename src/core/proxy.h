/* SPDX-License-Identifier: MIT */
#pragma once

/* The way out of a run with network "filtered": an HTTP forward proxy the daemon serves on a
 * listening socket that the sandbox's init made on 127.0.0.1:8118 in the sandbox's own network
 * namespace. Plain HTTP requests (absolute-form, one per connection, forwarded with
 * "Connection: close") and CONNECT tunnels (end to end, no TLS interception). Every request's
 * host is checked against the server's rules and the run's narrower ones, resolved once, every
 * address checked, and the connection made to the address that was checked. Bounded per run:
 * connections at once, bytes, the request head's size and time; everything ends with the run. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "core/egress.h"
#include "core/resolve.h"
#include "shared/macro.h"

#define PROXY_PORT 8118
#define PROXY_LOG_MAX 1000

typedef struct Proxy Proxy;

typedef struct ProxyLogEntry {
        uint64_t timestamp_usec;    /* CLOCK_REALTIME, when the request came */
        char method[16];
        char *host;
        char *path;                 /* NULL for CONNECT */
        bool allowed;
        uint64_t duration_ms;
} ProxyLogEntry;

/* A refused request, for the audit log. */
typedef void (*ProxyBlockFn)(const char *method, const char *host, unsigned port, const char *reason, void *userdata);

typedef struct ProxyConfig {
        const EgressPolicy *policy;     /* the server's */
        RegexList whitelist;            /* the run's own (options.networkFilter), taken */
        RegexList blacklist;
        bool log;                       /* keep ProxyLogEntry records (options.logNetwork) */
        bool own_rules_only;            /* the server's host rules do not apply (package installs:
                                         * whitelist holds exactly the index hosts) */
        ProxyBlockFn on_block;
        void *userdata;
} ProxyConfig;

/* Takes listen_fd, and the config's regex lists (also on failure). */
int proxy_new(sd_event *event, Resolver *resolver, ProxyConfig *config, int listen_fd, Proxy **ret);
/* Closes every connection. */
Proxy *proxy_free(Proxy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Proxy *, proxy_free);

/* Bytes from the upstream servers to the program (in) and from the program to them (out). */
void proxy_bytes(Proxy *p, uint64_t *ret_in, uint64_t *ret_out);
/* The log so far (with config.log); durations of connections still open are up to now. */
const ProxyLogEntry *proxy_log(Proxy *p, size_t *ret_n);
unsigned proxy_connections(Proxy *p);
/* The request-level check alone: may this run reach host:port by name? */
bool proxy_host_allowed(const ProxyConfig *c, const char *host, unsigned port, const char **ret_reason);
