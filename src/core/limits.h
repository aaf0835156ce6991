/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum NetworkMode {
        NETWORK_NONE,
        NETWORK_HOST,
        NETWORK_FILTERED,
} NetworkMode;

/* The limits an execution runs under. One type, three instances: the server's defaults and
 * maximums (configuration: defaults.*, limits.*), and each run's, which start as the defaults
 * and move within the maximums as the request asks (core/request.c). body_bytes is only a
 * maximum (the largest request body); network and seccomp only defaults and a run's. */
typedef struct Limits {
        uint64_t timeout_ms;
        uint64_t memory_bytes;
        double cpu;
        uint64_t pids;
        uint64_t max_output;
        uint64_t sandbox_bytes;
        uint64_t tmp_bytes;
        uint64_t body_bytes;
        bool readonly_rootfs;
        NetworkMode network;
        bool seccomp;               /* strict (true) or unconfined */
} Limits;

/* The limits a request may set, each with its bound in the maximums. */
typedef enum LimitField {
        LIMIT_TIMEOUT,
        LIMIT_MEMORY,
        LIMIT_CPU,
        LIMIT_PIDS,
        LIMIT_MAX_OUTPUT,
        LIMIT_SANDBOX_SIZE,
        LIMIT_TMP_SIZE,
        _LIMIT_FIELD_MAX,
} LimitField;

const char *network_mode_to_string(NetworkMode m);
int network_mode_from_string(const char *s);
