/* SPDX-License-Identifier: MIT */
#pragma once

/* Name resolution off the event loop: getaddrinfo() (NSS, /etc/hosts and DNS, as every program
 * on the host resolves) in up to four worker threads with every signal blocked, the answers
 * handed to the loop through an eventfd. This is what libsystemd's sd-resolve does; Debian 12's
 * libsystemd-dev does not ship its header, so it is written here. */

#include <netdb.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"

typedef struct Resolver Resolver;
typedef struct ResolveQuery ResolveQuery;

/* error: 0, or an EAI_* code (gai_strerror()); ai is valid during the call only. */
typedef void (*ResolveFn)(int error, const struct addrinfo *ai, void *userdata);

int resolver_new(sd_event *event, Resolver **ret);
/* Cancels what can be cancelled and waits for lookups under way (they end by the resolver's own
 * timeouts). */
Resolver *resolver_free(Resolver *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Resolver *, resolver_free);

/* Looks up host (TCP, IPv4 and IPv6). fn is called once from the loop, never from here. */
int resolver_query(Resolver *r, const char *host, ResolveFn fn, void *userdata, ResolveQuery **ret);
/* fn will not be called; the query's memory goes when the lookup ends. */
void resolve_query_cancel(ResolveQuery *q);
unsigned resolver_pending(Resolver *r);
