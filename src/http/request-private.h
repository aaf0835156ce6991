/* SPDX-License-Identifier: MIT */
#pragma once

/* The inside of an HttpRequest, for http/ only. */

#include "http/http.h"

/* Where a request is in its life; the flags below are orthogonal to it. */
typedef enum HttpRequestState {
        HTTP_REQUEST_AUTHENTICATING,  /* the key is being looked up; the body is read meanwhile */
        HTTP_REQUEST_READING,         /* allowed: the body is read, then the handler runs */
        HTTP_REQUEST_HANDLING,        /* the handler ran and its work goes on (suspended) */
        HTTP_REQUEST_REPLIED,         /* a reply is made (queued, or waiting for a resume) */
        HTTP_REQUEST_UPGRADED,        /* answered 101: the socket left HTTP */
} HttpRequestState;

struct HttpRequest {
        HttpServer *server;
        struct MHD_Connection *connection;
        HttpRequestState state;
        char *method;
        char *path;
        const Route *route;
        int lookup;                   /* router result: 0, -ENOENT, -EOPNOTSUPP */
        char *param;                  /* the ":id" segment of the route, if any */
        Buffer body;
        bool body_too_large;
        bool suspended;               /* MHD's connection is suspended (waiting for us) */
        bool checked;                 /* routing and size checks done (after authentication) */
        bool close_connection;        /* answer with "Connection: close" */
        uint64_t unauthenticated_bytes; /* of body, counted while the key is looked up */
        AuthInfo auth;
        char remote_addr[64];
        struct MHD_Response *pending;  /* reply made while suspended, queued on resume */
        unsigned pending_status;
        /* Called if the request goes away (client gone, server stopping) while work for it is
         * still outstanding; the owner must forget r. */
        HttpRequestAbortFn on_abort;
        void *abort_userdata;
};

static inline bool http_request_replied(const HttpRequest *r) {
        return r->state >= HTTP_REQUEST_REPLIED;
}
