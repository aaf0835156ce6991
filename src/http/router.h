/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

typedef struct HttpRequest HttpRequest;

typedef enum RouteAccess {
        ROUTE_PUBLIC,     /* no Authorization needed */
        ROUTE_ANY_KEY,    /* master key or a DB key */
        ROUTE_MASTER,     /* master key only (the auth routes and cleanup) */
} RouteAccess;

typedef int (*RouteHandler)(HttpRequest *r, void *userdata);

typedef struct Route {
        const char *method;   /* "GET", "POST", ... */
        const char *pattern;  /* "/session/:id": one ":name" segment matches one non-empty segment */
        RouteAccess access;
        RouteHandler handler;
        unsigned flags;       /* ROUTE_* flags below */
} Route;

enum {
        ROUTE_UPGRADE = 1 << 0,  /* handler may answer with a protocol upgrade */
};

/* Looks up method+path. Returns 0 and the route (and the captured ":param" segment, or NULL, which
 * the caller frees); -ENOENT when no pattern matches the path; -EOPNOTSUPP when a pattern matches
 * but not with this method. */
int router_lookup(const Route *table, size_t n, const char *method, const char *path,
                  const Route **ret, char **ret_param);
