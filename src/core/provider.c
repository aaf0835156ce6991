/* SPDX-License-Identifier: MIT */
#include "core/provider.h"

static int engine_new_sandbox(void *userdata, const SandboxOptions *opts, SandboxHandler handler, void *handler_userdata,
                              Sandbox **ret) {
        return sandbox_new(userdata, opts, handler, handler_userdata, ret);
}

static const SandboxProviderOps engine_ops = {
        .new_sandbox = engine_new_sandbox,
        .free_sandbox = sandbox_free,
        .set_handler = sandbox_set_handler,
        .is_ready = sandbox_is_ready,
        .is_dead = sandbox_is_dead,
        .shares_network = sandbox_shares_network,
        .clean = sandbox_clean,
        .kill = sandbox_kill,
        .open_root = sandbox_open_root,
        .host_uid = sandbox_host_uid,
        .write = sandbox_write,
        .memory_fits = sandbox_memory_fits,
};

void sandbox_provider_init_engine(SandboxProvider *p, SandboxEngine *e) {
        *p = (SandboxProvider) { .ops = &engine_ops, .userdata = e, .event = sandbox_engine_event(e) };
}
