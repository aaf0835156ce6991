/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "http/router.h"
#include "tap.h"

static int h(HttpRequest *r, void *u) { return 0; }

static const Route table[] = {
        { "GET", "/health", ROUTE_PUBLIC, h, 0 },
        { "POST", "/execute", ROUTE_ANY_KEY, h, 0 },
        { "POST", "/execute/stream", ROUTE_ANY_KEY, h, 0 },
        { "DELETE", "/session/:id", ROUTE_ANY_KEY, h, 0 },
        { "DELETE", "/auth/keys/:id", ROUTE_MASTER, h, 0 },
        { "GET", "/auth/keys", ROUTE_MASTER, h, 0 },
        { "POST", "/auth/keys", ROUTE_MASTER, h, 0 },
};

int main(void) {
        const Route *r = NULL;
        char *param = NULL;
        size_t n = sizeof(table) / sizeof(table[0]);

        CHECK(router_lookup(table, n, "GET", "/health", &r, &param) == 0 && r == &table[0] && !param);
        CHECK(router_lookup(table, n, "HEAD", "/health", &r, &param) == 0 && r == &table[0]);
        CHECK(router_lookup(table, n, "POST", "/health", &r, &param) == -EOPNOTSUPP);
        CHECK(router_lookup(table, n, "GET", "/nope", &r, &param) == -ENOENT);
        CHECK(router_lookup(table, n, "GET", "/health/", &r, &param) == -ENOENT);
        CHECK(router_lookup(table, n, "GET", "/healthz", &r, &param) == -ENOENT);
        CHECK(router_lookup(table, n, "POST", "/execute/stream", &r, &param) == 0 && r == &table[2]);
        CHECK(router_lookup(table, n, "GET", "/execute", &r, &param) == -EOPNOTSUPP);

        CHECK(router_lookup(table, n, "DELETE", "/session/abc-123", &r, &param) == 0 && r == &table[3]);
        CHECK_STREQ(param, "abc-123");
        free(param);
        param = NULL;
        CHECK(router_lookup(table, n, "DELETE", "/session/", &r, &param) == -ENOENT);
        CHECK(router_lookup(table, n, "DELETE", "/session/a/b", &r, &param) == -ENOENT);
        CHECK(router_lookup(table, n, "GET", "/session/x", &r, &param) == -EOPNOTSUPP);

        /* Same path, two methods */
        CHECK(router_lookup(table, n, "GET", "/auth/keys", &r, &param) == 0 && r == &table[5]);
        CHECK(router_lookup(table, n, "POST", "/auth/keys", &r, &param) == 0 && r == &table[6]);
        CHECK(router_lookup(table, n, "PUT", "/auth/keys", &r, &param) == -EOPNOTSUPP);
        CHECK(router_lookup(table, n, "DELETE", "/auth/keys/k1", &r, &param) == 0 && r->access == ROUTE_MASTER);
        CHECK_STREQ(param, "k1");
        free(param);
        return tap_done();
}
