/* SPDX-License-Identifier: MIT */
/* The routing table of the HTTP API: method, path, who may call, handler. */
#include "api/api.h"

static const Route routes[] = {
        { "GET",    "/health",         ROUTE_PUBLIC,  api_health, 0 },
        { "POST",   "/execute",        ROUTE_ANY_KEY, api_execute, 0 },
        { "POST",   "/execute/stream", ROUTE_ANY_KEY, api_execute_stream, 0 },
        { "GET",    "/execute/ws",     ROUTE_ANY_KEY, api_execute_ws, ROUTE_UPGRADE },
        { "GET",    "/sessions",       ROUTE_ANY_KEY, api_sessions_list, 0 },
        { "DELETE", "/session/:id",    ROUTE_ANY_KEY, api_session_delete, 0 },
        { "POST",   "/file",           ROUTE_ANY_KEY, api_file_put, 0 },
        { "GET",    "/file",           ROUTE_ANY_KEY, api_file_get, 0 },
        { "POST",   "/cleanup",        ROUTE_MASTER,  api_cleanup, 0 },
        { "POST",   "/auth/keys",      ROUTE_MASTER,  api_auth_keys_create, 0 },
        { "GET",    "/auth/keys",      ROUTE_MASTER,  api_auth_keys_list, 0 },
        { "DELETE", "/auth/keys/:id",  ROUTE_MASTER,  api_auth_keys_revoke, 0 },
        { "POST",   "/auth/login",     ROUTE_MASTER,  api_auth_login, 0 },
        { "GET",    "/queue/status",   ROUTE_ANY_KEY, api_queue_status, 0 },
};

const Route *api_routes(size_t *ret_n) {
        *ret_n = ELEMENTSOF(routes);
        return routes;
}
