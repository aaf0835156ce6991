/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "sandbox/cgroup.h"
#include "sandbox/runtime.h"
#include "sandbox/seccomp.h"
#include "shared/macro.h"

/* A sandbox is a long-lived init process inside fresh user, mount, pid, net, ipc, uts and
 * cgroup namespaces, with its root, /proc, /dev, /sandbox and /tmp already mounted and its
 * cgroup in place. Running a program in it is a message to that init, which forks, drops
 * privileges, applies no_new_privs and seccomp, and execs: the expensive work happens once. */

typedef struct SandboxEngine SandboxEngine;
typedef struct Sandbox Sandbox;

#define SANDBOX_UID 1000
#define SANDBOX_UID_RANGE 65536
#define SANDBOX_SLOTS_MAX 1024

typedef struct SandboxEngineConfig {
        const char *state_dir;          /* e.g. /run/isol8 */
        uint32_t uid_base;              /* host uid of slot 0's sandbox root */
        const char *cgroup_root;        /* /sys/fs/cgroup */
        const Runtimes *runtimes;
        const char *init_program;       /* isol8-sandbox-init; NULL: next to our executable, else libexecdir */
} SandboxEngineConfig;

int sandbox_engine_new(SandboxEngine **ret, sd_event *event, const SandboxEngineConfig *config);
SandboxEngine *sandbox_engine_free(SandboxEngine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(SandboxEngine *, sandbox_engine_free);
unsigned sandbox_engine_n_live(SandboxEngine *e);
CgroupManager *sandbox_engine_cgroups(SandboxEngine *e);
sd_event *sandbox_engine_event(SandboxEngine *e);

typedef enum SandboxEvent {
        SANDBOX_READY,      /* set up; value = the CPU time the init spent on it (µs, > 0), or a negative errno */
        SANDBOX_STARTED,    /* the program runs */
        SANDBOX_EXITED,     /* the program ended, value = wait status; all its processes are gone */
        SANDBOX_CLEANED,    /* reset after a run, ready to be reused; value as for READY (what the clean cost) */
        SANDBOX_DIED,       /* the init process is gone (killed, OOM): the sandbox is unusable */
        SANDBOX_WRITE_FAILED, /* a RunSpec write failed (value: -errno from the file layer, -ENOMEM at the
                               * memory limit); the program did not start */
} SandboxEvent;

typedef void (*SandboxHandler)(Sandbox *sb, SandboxEvent ev, int value, void *userdata);

typedef struct SandboxOptions {
        bool share_network;         /* network "host": no network namespace */
        uint64_t sandbox_bytes;
        uint64_t tmp_bytes;
        const char *image_dir;      /* a runtime image's layer on the host, mounted read-only ... */
        const char *image_target;   /* ... at this absolute path inside (both or neither) */
} SandboxOptions;

int sandbox_new(SandboxEngine *e, const SandboxOptions *opts, SandboxHandler handler, void *userdata, Sandbox **ret);
/* Kills everything in it and releases its cgroup and slot. */
Sandbox *sandbox_free(Sandbox *sb);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sandbox *, sandbox_free);
void sandbox_set_handler(Sandbox *sb, SandboxHandler handler, void *userdata);

const char *sandbox_id(Sandbox *sb);
bool sandbox_is_ready(Sandbox *sb);
bool sandbox_shares_network(Sandbox *sb);
bool sandbox_is_dead(Sandbox *sb);
unsigned sandbox_runs(Sandbox *sb);
Cgroup *sandbox_cgroup(Sandbox *sb);
pid_t sandbox_init_pid(Sandbox *sb);

typedef struct SandboxWrite {
        const char *path;       /* normalised sandbox path */
        const void *data;
        size_t size;
        bool dir;               /* mkdir -p path instead */
} SandboxWrite;

typedef struct RunSpec {
        char **argv;
        char **envp;
        const char *cwd;
        uint64_t fsize_limit;
        uint64_t sandbox_bytes;
        uint64_t tmp_bytes;
        bool readonly_rootfs;
        bool seccomp;
        uint16_t proxy_port;    /* != 0: the init listens on 127.0.0.1:port (sandbox_take_proxy_fd) */
        const SandboxWrite *writes;     /* written before the program starts */
        size_t n_writes;
} RunSpec;

/* Starts a program with the given stdin/stdout/stderr (the fds are duplicated). */
int sandbox_run(Sandbox *sb, const RunSpec *spec, int fd_in, int fd_out, int fd_err);
/* The listening socket on 127.0.0.1:proxy_port inside the sandbox that came with the last
 * SANDBOX_STARTED of a run with a proxy port (the caller owns it), or -ENOENT. */
int sandbox_take_proxy_fd(Sandbox *sb);
/* Writes files into the sandbox by its init with the sandbox user's file system ids (counted
 * against its memory limit), off the event loop; cb comes once, from the loop or when the
 * sandbox is freed, with 0 or -errno (the file layer's; -EIO: the init could not start it;
 * -ESRCH: the sandbox went away). At most 16 under way (then -EBUSY), answered in order. The
 * data is copied before this returns. */
typedef void (*SandboxWriteFn)(int result, void *userdata);
int sandbox_write(Sandbox *sb, const SandboxWrite *writes, size_t n, SandboxWriteFn cb, void *userdata);
/* Whether bytes more fit under the sandbox's memory limit, with 4 MiB to spare: a write that
 * cannot fit is refused before the OOM killer has to choose (it could choose the init, which
 * writes, and the sandbox would go with it). */
bool sandbox_memory_fits(Sandbox *sb, uint64_t bytes);
/* Kills every process of the running program (the sandbox itself stays). */
int sandbox_kill(Sandbox *sb);
/* Delivers a signal to the running program's main process. */
int sandbox_signal(Sandbox *sb, int sig);
/* Resets a used sandbox: every process killed, fresh /sandbox, /tmp and /dev/shm. */
int sandbox_clean(Sandbox *sb, uint64_t sandbox_bytes, uint64_t tmp_bytes);
/* An O_PATH fd for the sandbox's root directory, as seen from the host. */
int sandbox_open_root(Sandbox *sb);
/* host uid/gid of the sandbox user, for files the daemon writes into it. */
uid_t sandbox_host_uid(Sandbox *sb);
/* Network bytes of the sandbox's own interfaces (lo excluded). */
void sandbox_net_bytes(Sandbox *sb, uint64_t *in, uint64_t *out);
