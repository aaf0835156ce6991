/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/runtime.h"
#include "shared/log.h"
#include "shared/util.h"

static const char *const python_paths[] = { "/usr/bin/python3", "/usr/local/bin/python3", NULL };
static const char *const node_paths[] = { "/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs", NULL };
static const char *const bun_paths[] = { "/usr/local/bin/bun", "/usr/bin/bun", "/usr/local/lib/node_modules/bun/bin/bun.exe",
                                         "/usr/lib/node_modules/bun/bin/bun.exe", NULL };
static const char *const deno_paths[] = { "/usr/local/bin/deno", "/usr/bin/deno", "/usr/local/lib/node_modules/deno/deno",
                                          "/usr/lib/node_modules/deno/deno", NULL };
static const char *const bash_paths[] = { "/usr/bin/bash", "/bin/bash", NULL };

static const char *const python_inline[] = { "-c", NULL };
static const char *const node_inline[] = { "-e", NULL };
static const char *const deno_inline[] = { "eval", NULL };
static const char *const bash_inline[] = { "-c", NULL };
static const char *const no_args[] = { NULL };
static const char *const bun_file[] = { "run", NULL };
static const char *const deno_file[] = { "run", "--allow-read=/sandbox,/tmp", "--allow-write=/sandbox,/tmp", "--allow-env", NULL };

static const RuntimeInfo runtime_table[_RUNTIME_MAX] = {
        [RUNTIME_PYTHON] = { "python", python_paths, python_inline, no_args, ".py" },
        [RUNTIME_NODE] = { "node", node_paths, node_inline, no_args, ".js" },
        [RUNTIME_BUN] = { "bun", bun_paths, node_inline, bun_file, ".ts" },
        [RUNTIME_DENO] = { "deno", deno_paths, deno_inline, deno_file, ".ts" },
        [RUNTIME_BASH] = { "bash", bash_paths, bash_inline, no_args, ".sh" },
        /* node runs pi from the image's /node_modules (core/execution.c builds its command line) */
        [RUNTIME_AGENT] = { "agent", node_paths, no_args, no_args, ".md" },
};

const RuntimeInfo *runtime_info(RuntimeId id) {
        return id >= 0 && id < _RUNTIME_MAX ? &runtime_table[id] : NULL;
}

int runtime_from_string(const char *s) {
        for (int i = 0; i < _RUNTIME_MAX; i++)
                if (streq(runtime_table[i].name, s))
                        return i;
        return -EINVAL;
}

const char *runtime_to_string(RuntimeId id) {
        return runtime_info(id) ? runtime_table[id].name : NULL;
}

static int resolve(const char *path, char **ret_path, char **ret_extra) {
        char real[PATH_MAX];

        if (access(path, X_OK) < 0)
                return -errno;
        if (!realpath(path, real))
                return -errno;
        *ret_path = strdup(real);
        if (!*ret_path)
                return -ENOMEM;
        *ret_extra = NULL;
        if (!startswith(real, "/usr/")) {
                /* Outside /usr (which every sandbox gets): bind the binary's directory too. */
                char *slash = strrchr(real, '/');
                *slash = 0;
                *ret_extra = strdup(real);
        }
        return 0;
}

int runtimes_discover(Runtimes *rt, char *const *configured) {
        for (int i = 0; i < _RUNTIME_MAX; i++) {
                if (configured && configured[i]) {
                        int r = resolve(configured[i], &rt->path[i], &rt->extra_dir[i]);
                        if (r < 0)
                                return log_error_errno(r, "runtimes.%s.path: %s is not an executable: %m",
                                                       runtime_table[i].name, configured[i]);
                        continue;
                }
                for (const char *const *c = runtime_table[i].candidates; *c; c++)
                        if (resolve(*c, &rt->path[i], &rt->extra_dir[i]) >= 0)
                                break;
                if (rt->path[i])
                        log_debug("runtime %s: %s", runtime_table[i].name, rt->path[i]);
        }
        return 0;
}

void runtimes_done(Runtimes *rt) {
        for (int i = 0; i < _RUNTIME_MAX; i++) {
                free(rt->path[i]);
                free(rt->extra_dir[i]);
        }
        *rt = (Runtimes) {};
}

char *runtimes_available_list(const Runtimes *rt) {
        Buffer b = {};
        for (int i = 0; i < _RUNTIME_MAX; i++) {
                if (!rt->path[i])
                        continue;
                if (b.size > 0)
                        buffer_append(&b, ", ", 2);
                buffer_append(&b, runtime_table[i].name, strlen(runtime_table[i].name));
        }
        return buffer_steal_string(&b);
}
