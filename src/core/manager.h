/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "audit/audit.h"
#include "audit/failure-limit.h"
#include "auth/auth.h"
#include "auth/keystore.h"
#include "core/cluster.h"
#include "core/config.h"
#include "core/execution.h"
#include "core/fetch.h"
#include "core/outcome.h"
#include "core/pool.h"
#include "core/queue.h"
#include "core/request.h"
#include "core/session.h"
#include "sandbox/runtime.h"
#include "sandbox/sandbox.h"
#include "shared/macro.h"

/* The Manager owns everything of the server that lives on the event loop: the sandbox engine,
 * the warm pool, the execution queue, the sessions, the key store, the audit trail, the
 * counters and shutdown. Every operation a client may ask for (start a run, sessions, files,
 * keys, cleanup, status) is a manager_*() call that validates its input itself, so HTTP
 * (api/), D-Bus (bus/) and local runs of `isol8 run` (client/local.c) get the same answers.
 * Transports register with manager_add_transport() so that idle exit and drain can see them.
 *
 * Return values: < 0 is an internal failure (negative errno); 0 is success; > 0 is a
 * documented Outcome (core/outcome.h). Asynchronous operations return a handle that the caller
 * may cancel until its callback has run; after a cancel the callback is never called. */

typedef struct Run Run;

/* An asynchronous key operation: the caller's until its callback runs. After
 * manager_call_cancel() the callback is never called; what the operation does to the server
 * (a key created, its audit record) still happens. */
typedef struct ManagerCall ManagerCall;
void manager_call_cancel(ManagerCall *c);

typedef struct TransportOps {
        /* Requests under way (drain waits for them) and open connections (idle exit). */
        unsigned (*n_requests)(void *userdata);
        unsigned (*n_connections)(void *userdata);
        /* Stop taking new work: the server is stopping. */
        void (*quiesce)(void *userdata);
        /* A session was created or destroyed (for bus signals). */
        void (*session_event)(void *userdata, const char *tenant, const char *id, bool created);
} TransportOps;

typedef struct ManagerOptions {
        const char *master_key;     /* NULL: no master key (local runs) */
        bool serve;                 /* a server: signals, idle exit, a warm pool, the key store */
        bool activated;             /* under socket activation (idle exit defaults to on) */
        const char *config_path;    /* read again on SIGHUP */
        uint16_t port;              /* for the status line */
} ManagerOptions;

#define MANAGER_TRANSPORTS_MAX 4

typedef struct Manager {
        sd_event *event;
        Config config;
        Runtimes runtimes;
        SandboxEngine *engine;
        SandboxProvider provider;      /* the engine, as the pool and the sessions see it */
        Pool *pool;
        CpuOrder *cpu_order;        /* the oldest run first (core/cpu-order.c) */
        ExecQueue *queue;
        SessionRegistry *sessions;
        KeyStore *keys;                 /* NULL when DB-backed auth is off */
        Cluster *cluster;               /* NULL for one server (no cluster.nodeId) */
        Audit *audit;                   /* NULL when auditing is off */
        FailureLimit *auth_failures;
        ExecContext exec;
        SpecPolicy policy;
        EgressPolicy egress;            /* network "filtered" and codeUrl: the server's rules */
        Resolver *resolver;
        FetchPolicy fetch_policy;       /* remoteCode.* */
        PackagesPolicy packages;        /* packages.* */
        char *images_dir;               /* runtime images (core/images.c) */
        struct Image *images;
        struct ImageBuild *builds;
        Fetcher *fetcher;               /* NULL unless remoteCode.enabled */
        uint64_t output_held;           /* buffered output of all runs (see ExecContext) */
        char *master_key;
        int devnull_fd;

        /* Counters. */
        uint64_t total_executions;
        unsigned active_executions;
        Run *runs;                      /* runs under way, so that shutdown can cancel them */

        struct {
                const TransportOps *ops;
                void *userdata;
        } transports[MANAGER_TRANSPORTS_MAX];
        unsigned n_transports;

        /* Life cycle. */
        bool serve;
        bool shutting_down;
        bool draining;                  /* leaving: running work finishes, nothing new starts */
        uint16_t port;
        char *config_path;
        sd_event_source *sig_term, *sig_int, *sig_hup, *drain_timer, *idle_timer;
        uint64_t idle_exit_usec;
        uint64_t idle_since;
        uint64_t drain_deadline;
} Manager;

/* Takes the configuration. */
int manager_new(Manager **ret, sd_event *event, Config *config, const ManagerOptions *opts);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
int manager_add_transport(Manager *m, const TransportOps *ops, void *userdata);
/* A transport going away (before the manager: what it stops still tells the others). */
void manager_remove_transport(Manager *m, void *userdata);
/* Fills the pool and tells systemd we are ready; then run the event loop. */
int manager_startup(Manager *m);
/* Stops taking work, cancels runs, exits the loop once drained (SIGTERM does this). */
int manager_begin_stop(Manager *m);
/* Drains: no new runs or sessions (OUTCOME_DRAINING), /health says "draining", running work
 * finishes; then, or after drainTimeoutMs (30 s when that is 0), the server stops as
 * manager_begin_stop() does. */
int manager_drain(Manager *m, const char *via);
unsigned manager_n_runs(Manager *m);

/* Authentication of a presented bearer token. Returns 0 with *ret_who filled when it is decided
 * at once (the master key), an Outcome when it is refused at once, or MANAGER_PENDING when the
 * key store is asked: cb follows unless *ret_call is cancelled first. */
#define MANAGER_PENDING (-1000)
typedef void (*ManagerAuthFn)(Outcome outcome, const AuthInfo *who, void *userdata);
int manager_authenticate(Manager *m, const char *token, size_t len, AuthInfo *ret_who, ManagerAuthFn cb, void *userdata,
                         ManagerCall **ret_call);
/* Requests one server forwards to another for its client (core/cluster.h): signed with
 * cluster.secret (HMAC-SHA-256 over the sender, the time, the request line, the client's
 * identity and address), valid for 60 s. The client's key is never passed on. */
typedef struct ClusterSignature {
        char stamp[CLUSTER_NODE_ID_MAX + 21 + 1 + 64 + 1];          /* X-Isol8-Cluster: "<node> <time_ms> <sig>" */
        char identity[16 + 1 + 36 + 1 + TENANT_MAX + 1];            /* X-Isol8-Identity: "<type> <key id or -> <tenant>" */
} ClusterSignature;
/* Signs a request for who, filling the header values. */
int manager_cluster_sign(Manager *m, const char *method, const char *path, const AuthInfo *who, const char *remote,
                         ClusterSignature *ret);
/* stamp "<node> <time_ms> <signature>", identity "<type> <key id or -> <tenant>": 0 with *ret
 * (marked forwarded), or an Outcome. */
int manager_cluster_authenticate(Manager *m, const char *stamp, const char *identity, const char *remote, const char *method,
                                 const char *path, AuthInfo *ret);
/* A refused authentication, for the (rate-limited) audit trail. Never the presented key. */
void manager_auth_failure(Manager *m, const char *remote, const char *reason, const char *method, const char *path);

/* Keys (the master's operations; via is "http" or "dbus" for the audit record). ttl_ms 0: the
 * configured default. Validation of name, tenant and ttl is here; *ret_message says what is
 * wrong when OUTCOME_INVALID is returned. */
typedef void (*ManagerKeyFn)(int error, Outcome outcome, const KeyInfo *key, const char *plain_key, void *userdata);
typedef void (*ManagerKeyListFn)(int error, Outcome outcome, const KeyInfo *keys, size_t n, void *userdata);
#define KEY_NAME_MAX 255
#define KEY_TTL_MAX_MS (UINT64_C(10) * 365 * 24 * 3600 * 1000)
#define KEY_LOGIN_TTL_MS UINT64_C(3600000)
int manager_key_create(Manager *m, const char *name, const char *tenant, uint64_t ttl_ms, const char *via, ManagerKeyFn cb,
                       void *userdata, ManagerCall **ret_call, const char **ret_message);
int manager_key_list(Manager *m, const char *tenant, ManagerKeyListFn cb, void *userdata, ManagerCall **ret_call);
int manager_key_revoke(Manager *m, const char *id, const char *via, ManagerKeyFn cb, void *userdata, ManagerCall **ret_call);

/* Sessions and their files, as the caller may see them. */
int manager_session_destroy(Manager *m, const AuthInfo *who, const char *id);
/* Writes a file into a session's sandbox, charged to its memory, by the sandbox's own init (off
 * the event loop). Returns an Outcome or < 0 when refused at once; 0 when under way: cb then
 * comes once with 0, an Outcome or < 0 (the data was copied). */
typedef struct ManagerFileCall ManagerFileCall;
typedef void (*ManagerFileFn)(int result, void *userdata);
int manager_file_write(Manager *m, const AuthInfo *who, const char *session_id, const char *path, const void *data,
                       size_t size, ManagerFileFn cb, void *userdata, ManagerFileCall **ret_call);
/* cb will not be called (the write itself still happens). */
void manager_file_call_cancel(ManagerFileCall *c);
/* Reads a file out of a session's sandbox, secrets masked; at most max bytes (else OUTCOME_TOO_BIG). */
int manager_file_read(Manager *m, const AuthInfo *who, const char *session_id, const char *path, size_t max, char **ret,
                      size_t *ret_size);

/* Ends every session and empties the pool (it fills again). */
typedef struct CleanupCounts {
        unsigned sessions;
        unsigned sandboxes;
} CleanupCounts;
void manager_cleanup(Manager *m, CleanupCounts *ret);

typedef struct ManagerStatus {
        unsigned active;
        unsigned queued;
        unsigned max_concurrent;
        unsigned max_queue;
        uint64_t queue_timeout_ms;
        unsigned sessions;
        uint64_t total_executions;
        unsigned pool_ready;
        unsigned pool_total;
        PoolStats pool;
        bool shutting_down;
} ManagerStatus;
void manager_status(Manager *m, ManagerStatus *ret);
