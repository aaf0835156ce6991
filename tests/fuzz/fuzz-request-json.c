/* SPDX-License-Identifier: MIT */
/* Fuzz target for the JSON execution envelope: the body parser with its limits, then
 * api_request_parse() and the core's rules behind it. Every input either parses into a request
 * that satisfies the server's limits or is refused with a message; nothing else. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "shared/json-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const Limits defaults = {
        .timeout_ms = 30000, .memory_bytes = 512ull << 20, .cpu = 1.0, .pids = 64, .max_output = 1048576,
        .sandbox_bytes = 512ull << 20, .tmp_bytes = 256ull << 20, .readonly_rootfs = true, .network = NETWORK_NONE, .seccomp = true,
};
static const Limits maximums = {
        .timeout_ms = 300000, .memory_bytes = 4ull << 30, .cpu = 4, .pids = 1024, .max_output = 16777216,
        .sandbox_bytes = 2ull << 30, .tmp_bytes = 1ull << 30, .body_bytes = 10485760,
};
static char *allowed[] = { (char *) "none", (char *) "host", NULL };
static const Runtimes runtimes = { .path = { [RUNTIME_PYTHON] = (char *) "/usr/bin/python3", [RUNTIME_NODE] = (char *) "/usr/bin/node",
                                             [RUNTIME_BASH] = (char *) "/usr/bin/bash" } };
static const SpecPolicy policy = { &defaults, &maximums, allowed, false, &runtimes };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *o = NULL;
        ExecRequest *req = NULL;
        char *error = NULL;
        int r;

        if (json_parse_limited((const char *) data, size, JSON_DEPTH_MAX, &o) < 0)
                return 0;
        r = api_request_parse(o, &policy, &req, &error);
        if (r == 0) {
                const Limits *l = &req->limits;
                /* What parsed is within the server's bounds and complete. */
                if (!req || !!req->code == !!req->cmd || !req->extension || !req->workdir ||
                    l->timeout_ms < 1 || l->timeout_ms > maximums.timeout_ms || l->memory_bytes > maximums.memory_bytes ||
                    l->pids > maximums.pids || l->cpu > maximums.cpu || l->max_output > maximums.max_output ||
                    strncmp(req->workdir, "/sandbox", 8) != 0)
                        abort();
                for (size_t i = 0; i < req->n_files; i++)
                        if (strncmp(req->files[i].path, "/sandbox/", 9) != 0 && strncmp(req->files[i].path, "/tmp/", 5) != 0)
                                abort();
        } else if (r == -EINVAL && !error)
                abort();   /* a refusal always says why */
        free(error);
        exec_request_free(req);
        json_object_put(o);
        return 0;
}
