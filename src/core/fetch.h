/* SPDX-License-Identifier: MIT */
#pragma once

/* request.codeUrl: the program fetched by the daemon before it runs, with libcurl's multi
 * interface on the event loop. libcurl is loaded with dlopen() when remoteCode.enabled is set
 * (systemd's way with optional libraries): a server that never fetches keeps its memory.
 *
 * Every URL, the first and each redirect's, is checked the same way: a scheme the server
 * allows (http only where the request says allowInsecureCodeUrl too), no user info,
 * remoteCode.allowedHosts/blockedHosts, the port of network.allowedPorts' rules do not apply
 * (a code URL names its own), the host resolved once (core/resolve.c) and its address checked
 * like the proxy's (network.allowedAddresses), and libcurl told to connect to that address
 * and no other. The body is capped while it is read; the sha256 is checked before anything
 * runs. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "core/egress.h"
#include "core/resolve.h"
#include "shared/macro.h"

typedef struct Fetcher Fetcher;
typedef struct CodeFetch CodeFetch;

typedef struct FetchPolicy {
        char *const *allowed_schemes;   /* "https", "http" */
        RegexList allowed_hosts;        /* empty: any */
        RegexList blocked_hosts;
        uint64_t max_size;
        uint64_t timeout_ms;
        bool require_hash;
        const char *ca_file;            /* NULL: the system's */
        const EgressPolicy *egress;     /* network.allowedAddresses */
} FetchPolicy;

/* error < 0: an internal failure; otherwise message is NULL and data (NUL-terminated, size
 * bytes, the caller's to free) the program, or message says why the URL was refused (a 400). */
typedef void (*CodeFetchFn)(int error, const char *message, char *data, size_t size, void *userdata);

/* -EOPNOTSUPP when libcurl cannot be loaded. Takes nothing from policy but its pointers. */
int fetcher_new(sd_event *event, Resolver *resolver, const FetchPolicy *policy, Fetcher **ret);
Fetcher *fetcher_free(Fetcher *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(Fetcher *, fetcher_free);

/* The checks that need no network (scheme, host rules, the hash's form): 0, or -EINVAL with
 * the message for the client. */
int fetcher_check_url(Fetcher *f, const char *url, const char *hash, bool allow_insecure, char **ret_error);

/* Starts fetching url; cb comes once, from the loop. timeout_ms bounds the whole fetch. */
int code_fetch_start(Fetcher *f, const char *url, const char *hash, bool allow_insecure, uint64_t timeout_ms,
                     CodeFetchFn cb, void *userdata, CodeFetch **ret);
/* cb will not be called. */
void code_fetch_cancel(CodeFetch *q);
