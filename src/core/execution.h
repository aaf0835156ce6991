/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "core/cpu-order.h"
#include "core/outcome.h"
#include "core/egress.h"
#include "core/pool.h"
#include "core/proxy.h"
#include "core/resolve.h"
#include "sandbox/sandbox.h"
#include "core/request.h"
#include "shared/util.h"

/* One execution of an ExecRequest: takes a sandbox (from the pool, or a session's), writes the
 * request's files, runs the setup script and the program under the limits, collects output,
 * files and usage, and gives the sandbox back. Everything is driven by the event loop. */

typedef struct Execution Execution;

typedef enum ExecStream {
        EXEC_STDOUT = 1,
        EXEC_STDERR = 2,
} ExecStream;

typedef enum ExecPhase {
        EXEC_PHASE_SETUP,
        EXEC_PHASE_CODE,
        EXEC_PHASE_INSTALL,         /* request.installPackages; reported to callbacks as SETUP */
} ExecPhase;

/* A bash image's build: where its installer and the host's package list are put. */
#define DEB_UNPACK_PATH "/tmp/.isol8-deb-unpack"
#define DEB_HOST_PACKAGES_PATH "/tmp/.isol8-host-packages"

/* request.installPackages: where the installers go, and only there. */
typedef struct PackagesPolicy {
        const char *pypi_index_url;
        const char *npm_registry;
        char **host_patterns;       /* "^host$" of both and of packages.allowedHosts */
        char *pypi_host;            /* for pip's --trusted-host when the index is plain http */
        char *npm_cli;              /* npm's npm-cli.js (run with node), NULL when npm is not there */
        const char *debian_mirror;  /* bash images (the isol8-deb-unpack installer) */
        char *debian_suite;         /* set by the first bash image's build (core/images.c) */
        const char *debian_arch;
        bool pypi_http;
        uint64_t install_timeout_ms;
} PackagesPolicy;

/* A file of request.outputPaths, read out after the run (secrets masked). */
typedef struct ExecOutputFile {
        const char *path;           /* the request's */
        void *data;
        size_t size;
} ExecOutputFile;

typedef struct ExecResult {
        Buffer out;                 /* kept output, raw bytes (capped at max_output) */
        Buffer err;
        uint64_t out_total;         /* bytes the program wrote */
        uint64_t err_total;
        uint64_t out_kept;          /* bytes kept or streamed (at most max_output) */
        uint64_t err_kept;
        int exit_code;
        int signal;                 /* 0 unless killed by a signal */
        bool timed_out;
        bool oom_killed;
        bool pids_limited;
        bool truncated;
        bool setup_failed;
        bool install_failed;        /* the setup that failed was request.installPackages */
        bool cancelled;
        int error;                  /* < 0: the engine failed; no program result */
        uint64_t duration_ms;
        char execution_id[37];
        char container_id[48];
        uint64_t started_realtime_usec;
        ExecOutputFile *files;      /* outputPaths that could be read, or NULL */
        size_t n_files;
        Outcome refused;            /* the request was refused on the way (a path in request.files) */
        double cpu_percent;
        double memory_mb;
        double peak_memory_mb;
        uint64_t net_in;
        uint64_t net_out;
        ProxyLogEntry *net_log;     /* options.logNetwork: what the proxy saw */
        size_t n_net_log;
} ExecResult;

typedef struct ExecutionCallbacks {
        /* Live output (optional): data as the program writes it, already capped. */
        void (*on_output)(Execution *e, ExecStream stream, ExecPhase phase, const char *data, size_t len, void *userdata);
        /* The setup script exited 0; the code starts next (optional). */
        void (*on_setup_done)(Execution *e, void *userdata);
        /* The proxy of network "filtered" refused a request (optional; for the audit log). */
        void (*on_network_block)(Execution *e, const char *method, const char *host, unsigned port, const char *reason,
                                 void *userdata);
        /* The run is over; execution_result() holds the outcome. */
        void (*on_done)(Execution *e, void *userdata);
        /* stdin stays open for execution_write_stdin() (WebSocket); otherwise it gets
         * request.stdin and then end-of-file. */
        bool interactive_stdin;
} ExecutionCallbacks;

typedef struct ExecContext {
        sd_event *event;
        SandboxEngine *engine;
        Pool *pool;
        const Runtimes *runtimes;
        int devnull_fd;
        uint64_t max_file_bytes;    /* cap for one outputPaths file */
        /* Buffered output held by all executions together (NULL: unbounded): past the budget
         * a run's output is truncated, so many runs cannot take the host's memory at once. */
        uint64_t *output_held;
        uint64_t output_budget;
        const EgressPolicy *egress; /* network "filtered": the server's rules */
        const PackagesPolicy *packages;
        Resolver *resolver;
        CpuOrder *cpu_order;        /* NULL: runs share the CPU as the kernel sees fit */
} ExecContext;

/* Starts an execution. With sb == NULL a sandbox comes from the pool (or a dedicated one for
 * network "host"); otherwise sb is used and stays the caller's (a session's). Takes req. */
int execution_start(const ExecContext *ctx, ExecRequest *req, Sandbox *sb, const ExecutionCallbacks *cb,
                    void *userdata, Execution **ret);
Execution *execution_free(Execution *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Execution *, execution_free);
/* Ends the run early (client gone, server stopping); on_done still follows. */
void execution_cancel(Execution *e);
/* Writes to the program's stdin; len 0 closes it. */
int execution_write_stdin(Execution *e, const char *data, size_t len);
int execution_signal(Execution *e, int sig);
/* Stops reading the program's output (it blocks once its pipe is full) until resumed: how a
 * slow streaming client slows the program down instead of growing our buffers. */
void execution_pause_output(Execution *e, bool pause);
const ExecResult *execution_result(Execution *e);
const ExecRequest *execution_request(Execution *e);
bool execution_is_done(Execution *e);

/* The kept output of a stream: secrets masked, invalid UTF-8 replaced (no markers; a
 * transport renders those, api/render.c). *ret_len is its length. */
char *exec_result_output(const ExecResult *res, const ExecRequest *req, ExecStream stream, size_t *ret_len);
