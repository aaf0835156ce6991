/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "sandbox/sandbox.h"

/* What the pool and the sessions need of sandboxes, as a table: the engine's
 * (sandbox_provider_init_engine()) in the server, a fake in the unit tests, which drive the
 * pool's and the sessions' state machines without namespaces or root. */
typedef struct SandboxProviderOps {
        int (*new_sandbox)(void *userdata, const SandboxOptions *opts, SandboxHandler handler, void *handler_userdata,
                           Sandbox **ret);
        Sandbox *(*free_sandbox)(Sandbox *sb);
        void (*set_handler)(Sandbox *sb, SandboxHandler handler, void *userdata);
        bool (*is_ready)(Sandbox *sb);
        bool (*is_dead)(Sandbox *sb);
        bool (*shares_network)(Sandbox *sb);
        int (*clean)(Sandbox *sb, uint64_t sandbox_bytes, uint64_t tmp_bytes);
        int (*kill)(Sandbox *sb);
        /* Files (core/files.c): the sandbox's root as seen from the host, its user's host uid,
         * and writes done inside it, charged to its memory (sandbox_write()). */
        int (*open_root)(Sandbox *sb);
        uid_t (*host_uid)(Sandbox *sb);
        int (*write)(Sandbox *sb, const SandboxWrite *writes, size_t n, SandboxWriteFn cb, void *userdata);
        bool (*memory_fits)(Sandbox *sb, uint64_t bytes);
} SandboxProviderOps;

typedef struct SandboxProvider {
        const SandboxProviderOps *ops;
        void *userdata;
        sd_event *event;
} SandboxProvider;

void sandbox_provider_init_engine(SandboxProvider *p, SandboxEngine *e);
