/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"
#include "shared/util.h"

/* Matches path against pattern; on success returns true and the captured parameter (if any). */
static bool pattern_match(const char *pattern, const char *path, char **ret_param) {
        _cleanup_free_ char *param = NULL;
        const char *p = pattern, *s = path;

        while (*p && *s) {
                if (*p == ':') {
                        size_t n = strcspn(s, "/");
                        if (n == 0)
                                return false;
                        free(param);
                        param = strndup(s, n);
                        if (!param)
                                return false;
                        s += n;
                        p += strcspn(p, "/");
                        continue;
                }
                if (*p != *s)
                        return false;
                p++;
                s++;
        }
        if (*p || *s)
                return false;
        if (ret_param)
                *ret_param = TAKE_PTR(param);
        return true;
}

int router_lookup(const Route *table, size_t n, const char *method, const char *path,
                  const Route **ret, char **ret_param) {
        bool path_known = false;

        for (size_t i = 0; i < n; i++) {
                char *param = NULL;
                if (!pattern_match(table[i].pattern, path, &param))
                        continue;
                path_known = true;
                /* HEAD is served by GET routes. */
                if (!streq(table[i].method, method) &&
                    !(streq(method, "HEAD") && streq(table[i].method, "GET"))) {
                        free(param);
                        continue;
                }
                *ret = &table[i];
                if (ret_param)
                        *ret_param = param;
                else
                        free(param);
                return 0;
        }
        return path_known ? -EOPNOTSUPP : -ENOENT;
}
