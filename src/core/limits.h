/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Limits an execution runs under: the server's defaults, merged with a request's options. */
typedef struct ExecDefaults {
        uint64_t timeout_ms;
        uint64_t memory_bytes;
        double cpu;
        uint64_t pids;
        uint64_t max_output;
        uint64_t sandbox_bytes;
        uint64_t tmp_bytes;
        bool readonly_rootfs;
        char *network;          /* "none" | "host" | "filtered" */
        char *seccomp;          /* "strict" | "unconfined" */
} ExecDefaults;

/* The most a client may ask for. */
typedef struct ExecMaximums {
        uint64_t timeout_ms;
        uint64_t memory_bytes;
        double cpu;
        uint64_t pids;
        uint64_t max_output;
        uint64_t sandbox_bytes;
        uint64_t tmp_bytes;
        uint64_t body_bytes;
} ExecMaximums;
