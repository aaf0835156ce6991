/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/auth.h"
#include "bus/bus.h"
#include <grp.h>
#include "audit/audit.h"
#include "audit/failure-limit.h"
#include "daemon/server.h"
#include "http/http.h"
#include "sandbox/pool.h"
#include "sandbox/queue.h"
#include "sandbox/runtime.h"
#include "sandbox/sandbox.h"
#include "shared/log.h"
#include "shared/time-util.h"

#define DRAIN_TIMEOUT_USEC (10 * USEC_PER_SEC)

struct Server {
        sd_event *event;
        Config config;
        Runtimes runtimes;
        SandboxEngine *engine;
        Pool *pool;
        ExecQueue *queue;
        SessionRegistry *sessions;
        KeyStore *keys;
        Audit *audit;
        FailureLimit *auth_failures;
        uint64_t output_held;           /* buffered output of all runs (see ExecContext) */
        BusService *bus;
        HttpServer *http;
        ApiContext api;
        char *master_key;
        int devnull_fd;
        uint16_t port;
        sd_event_source *sig_term, *sig_int, *sig_hup, *drain_timer, *idle_timer;
        char *config_path;
        uint64_t idle_exit_usec;
        uint64_t idle_since;
        uint64_t drain_deadline;
        bool stopping;
};

typedef struct AuthWait {
        HttpRequest *r;
        RouteAccess access;
        FailureLimit *failures;
} AuthWait;

/* Never the presented key: only why it failed, from where, to where (rate-limited). */
static void audit_auth_failure(FailureLimit *f, HttpRequest *r, const char *reason) {
        failure_limit_record(f, r->remote_addr, reason, r->method, r->path);
}

static void auth_wait_gone(HttpRequest *r, void *userdata) {
        ((AuthWait *) userdata)->r = NULL;
}

static void on_key(int error, const KeyInfo *key, void *userdata) {
        AuthWait *w = userdata;
        HttpRequest *r = w->r;
        RouteAccess access = w->access;

        FailureLimit *failures = w->failures;

        free(w);
        if (!r)
                return;
        /* The wait is over: the request must no longer point at it. */
        r->on_abort = NULL;
        r->abort_userdata = NULL;
        if (error == -EHOSTDOWN || error == -ETIMEDOUT || error == -ESHUTDOWN) {
                audit_auth_failure(failures, r, "unavailable");
                http_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Auth database unavailable");
        } else if (error < 0) {
                audit_auth_failure(failures, r, error == -EKEYREVOKED ? "revoked" : error == -EKEYEXPIRED ? "expired" : "invalid");
                http_reply_error(r, MHD_HTTP_FORBIDDEN, "Invalid API key");
        } else if (access == ROUTE_MASTER) {
                audit_auth_failure(failures, r, "master-required");
                http_reply_error(r, MHD_HTTP_FORBIDDEN, "Master key required for this operation");
        } else {
                r->auth.type = AUTH_APIKEY;
                snprintf(r->auth.tenant, sizeof(r->auth.tenant), "%s", key->tenant);
                snprintf(r->auth.key_id, sizeof(r->auth.key_id), "%s", key->id);
                http_request_auth_done(r);
        }
}

/* The order of API.md: the master key first, then the key store if there is one, else 403. */
static int authenticate(HttpRequest *r, const char *header, RouteAccess access, void *userdata) {
        Server *s = userdata;
        const char *token;
        AuthWait *w;
        size_t len;
        int k;

        k = auth_parse_bearer(header, &token, &len);
        if (k == -ENOKEY) {
                audit_auth_failure(s->auth_failures, r, "missing");
                http_reply_error(r, MHD_HTTP_UNAUTHORIZED, "Missing Authorization header");
                return 1;
        }
        if (k >= 0 && auth_is_master(s->master_key, token, len)) {
                r->auth.type = AUTH_MASTER;
                strcpy(r->auth.tenant, TENANT_MASTER);
                return 0;
        }
        if (k < 0 || !s->keys) {
                audit_auth_failure(s->auth_failures, r, "invalid");
                http_reply_error(r, MHD_HTTP_FORBIDDEN, "Invalid API key");
                return 1;
        }
        w = calloc(1, sizeof(AuthWait));
        if (!w) {
                http_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
                return 1;
        }
        w->r = r;
        w->access = access;
        w->failures = s->auth_failures;
        k = keystore_lookup(s->keys, token, len, on_key, w);
        if (k < 0) {
                free(w);
                audit_auth_failure(s->auth_failures, r, "invalid");
                http_reply_error(r, MHD_HTTP_FORBIDDEN, "Invalid API key");
                return 1;
        }
        r->on_abort = auth_wait_gone;
        r->abort_userdata = w;
        return HTTP_AUTH_PENDING;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->sig_term);
        sd_event_source_disable_unref(s->sig_hup);
        free(s->config_path);
        sd_event_source_disable_unref(s->idle_timer);
        sd_event_source_disable_unref(s->sig_int);
        sd_event_source_disable_unref(s->drain_timer);
        http_server_free(s->http);
        session_registry_free(s->sessions);
        bus_service_free(s->bus);
        keystore_free(s->keys);
        failure_limit_free(s->auth_failures);
        audit_free(s->audit);
        pool_free(s->pool);
        exec_queue_free(s->queue);
        sandbox_engine_free(s->engine);
        runtimes_done(&s->runtimes);
        config_done(&s->config);
        free(s->master_key);
        safe_close(s->devnull_fd);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

static void on_session_event(const char *id, const char *tenant, bool created, const char *reason, void *userdata) {
        Server *s = userdata;
        AuditField f[] = {
                { "ISOL8_SESSION_ID", id },
                { "ISOL8_TENANT", tenant },
                { "ISOL8_REASON", reason },
        };
        char message[256];
        if (created)
                snprintf(message, sizeof(message), "session %s of tenant %s created", id, tenant);
        else
                snprintf(message, sizeof(message), "session %s of tenant %s destroyed (%s)", id, tenant, reason ?: "?");
        audit_emit(s->audit, created ? AUDIT_MESSAGE_SESSION_NEW : AUDIT_MESSAGE_SESSION_GONE, LOG_INFO,
                   created ? "session-created" : "session-destroyed", message, f, ELEMENTSOF(f));
        bus_service_session_event(s->bus, tenant, id, created);
}

static int on_drain_check(sd_event_source *es, uint64_t usec, void *userdata) {
        Server *s = userdata;

        if ((api_n_runs(&s->api) == 0 && http_server_n_requests(s->http) == 0) || now_usec(CLOCK_MONOTONIC) >= s->drain_deadline)
                return sd_event_exit(s->event, 0);
        return sd_event_source_set_time_relative(es, 20 * USEC_PER_MSEC) < 0 ? 0 :
               sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

static int server_begin_stop(Server *s) {
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        s->api.shutting_down = true;
        if (s->keys)
                keystore_flush(s->keys);
        http_server_quiesce(s->http);
        api_cancel_all(&s->api);
        s->drain_deadline = now_usec(CLOCK_MONOTONIC) + DRAIN_TIMEOUT_USEC;
        return sd_event_add_time_relative(s->event, &s->drain_timer, CLOCK_MONOTONIC, 0, 1000, on_drain_check, s);
}

static int on_signal(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        Server *s = userdata;

        if (s->stopping)
                return 0;
        s->stopping = true;
        log_info("Received %s, stopping: no new connections, cancelling running executions.",
                 si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        return server_begin_stop(s);
}

/* SIGHUP (systemctl reload): the configuration's limits and defaults are read again and the
 * key cache is dropped; runs under way keep what they started with. Everything else (ports,
 * pool, database, bus) needs a restart. */
static int on_reload(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata) {
        Server *s = userdata;
        _cleanup_free_ char *path = NULL, *error = NULL;
        Config fresh = {};
        int r;

        (void) sd_notifyf(false, "RELOADING=1\nSTATUS=Reloading\nMONOTONIC_USEC=%" PRIu64, now_usec(CLOCK_MONOTONIC));
        config_init(&fresh);
        r = config_find_and_load(&fresh, s->config_path, &path, &error);
        if (r < 0)
                log_error("Reload failed, keeping the configuration in use: %s", error ?: strerror(-r));
        else {
                /* Swap, so that the old strings go with fresh. */
                ExecDefaults old = s->config.defaults;
                s->config.defaults = fresh.defaults;
                fresh.defaults = old;
                /* The body limit stays: the HTTP server took it at start. */
                fresh.limits.body_bytes = s->config.limits.body_bytes;
                s->config.limits = fresh.limits;
                s->config.output_budget_bytes = fresh.output_budget_bytes;
                s->api.exec.output_budget = fresh.output_budget_bytes;
                if (s->keys)
                        keystore_drop_cache(s->keys);
                log_info("Reloaded the configuration%s%s: limits and defaults, key cache dropped.", path ? " from " : "",
                         path ?: "");
        }
        config_done(&fresh);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Listening on port %u", s->port);
        return 0;
}

/* Under socket activation the listening socket stays with systemd, which starts us again on
 * the next connection: after idle_exit_usec without a connection, a run or a session, exit. */
static int on_idle_check(sd_event_source *es, uint64_t usec, void *userdata) {
        Server *s = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        bool idle = http_server_n_connections(s->http) == 0 && api_n_runs(&s->api) == 0 &&
                    session_count(s->sessions) == 0 && exec_queue_pending(s->queue) == 0;

        if (s->stopping)
                return 0;
        if (!idle)
                s->idle_since = 0;
        else if (s->idle_since == 0)
                s->idle_since = now;
        else if (now - s->idle_since >= s->idle_exit_usec) {
                s->stopping = true;
                log_info("Idle for %" PRIu64 " s: exiting (systemd starts the service again on the next connection).",
                         s->idle_exit_usec / USEC_PER_SEC);
                return server_begin_stop(s);
        }
        (void) sd_event_source_set_time_relative(es, MAX(s->idle_exit_usec / 4, USEC_PER_SEC));
        return sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

int server_new(Server **ret, Config *config, const ServerOptions *opts) {
        _cleanup_(server_freep) Server *s = NULL;
        _cleanup_close_ int listen_fd = opts->listen_fd;
        const Route *routes;
        size_t n_routes;
        int r;

        s = calloc(1, sizeof(Server));
        if (!s)
                return -ENOMEM;
        s->devnull_fd = -EBADF;
        s->config = *config;
        *config = (Config) {};
        s->port = opts->port;
        s->master_key = strdup(opts->master_key);
        if (!s->master_key)
                return -ENOMEM;

        r = sd_event_default(&s->event);
        if (r < 0)
                return r;
        (void) sd_event_set_watchdog(s->event, true);

        r = runtimes_discover(&s->runtimes, s->config.runtime_path);
        if (r < 0)
                return r;
        if (!s->runtimes.path[RUNTIME_BASH])
                log_warning("bash was not found: request.cmd and setupScript will be refused.");

        s->devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (s->devnull_fd < 0)
                return -errno;

        SandboxEngineConfig ec = {
                .state_dir = s->config.sandbox_state_dir,
                .uid_base = (uint32_t) s->config.sandbox_uid_base,
                .cgroup_root = "/sys/fs/cgroup",
                .runtimes = &s->runtimes,
        };
        r = sandbox_engine_new(&s->engine, s->event, &ec);
        if (r < 0)
                return log_error_errno(r, "Cannot start the sandbox engine (isol8 serve needs root): %m");

        PoolConfig pc = {
                .reuse = s->config.pool_strategy == POOL_FAST,
                .clean = (unsigned) s->config.pool_clean,
                .dirty = (unsigned) s->config.pool_dirty,
                .sandbox_bytes = s->config.defaults.sandbox_bytes,
                .tmp_bytes = s->config.defaults.tmp_bytes,
        };
        r = pool_new(&s->pool, s->engine, &pc);
        if (r < 0)
                return r;
        r = exec_queue_new(&s->queue, s->event, (unsigned) s->config.max_concurrent, (unsigned) s->config.queue_max_size,
                           (unsigned) s->config.queue_max_per_tenant, s->config.queue_timeout_ms);
        if (r < 0)
                return r;

        SessionLimits sl = {
                .max_total = (unsigned) s->config.sessions_max_total,
                .max_per_tenant = (unsigned) s->config.sessions_max_per_tenant,
                .auto_prune = s->config.cleanup_auto_prune,
                .max_idle_usec = s->config.cleanup_max_age_ms * USEC_PER_MSEC,
                .sweep_interval_usec = MAX(s->config.cleanup_interval_ms, (uint64_t) 10) * USEC_PER_MSEC,
        };
        if (s->config.audit_enabled) {
                AuditConfig ac = {
                        .enabled = true,
                        .destination = streq(s->config.audit_destination, "file") ? AUDIT_FILE :
                                       streq(s->config.audit_destination, "stdout") ? AUDIT_STDOUT : AUDIT_JOURNAL,
                        .log_dir = s->config.audit_log_dir,
                        .retention_days = (unsigned) s->config.audit_retention_days,
                        .include_code = s->config.audit_include_code,
                        .include_output = s->config.audit_include_output,
                };
                r = audit_new(&s->audit, &ac);
                if (r < 0)
                        return r;
        }
        r = failure_limit_new(&s->auth_failures, s->event, s->audit);
        if (r < 0)
                return r;
        r = session_registry_new(&s->sessions, s->event, s->engine, s->pool, &sl);
        if (r < 0)
                return r;
        session_registry_set_event_handler(s->sessions, on_session_event, s);

        if (s->config.auth_enabled) {
                _cleanup_free_ char *def = NULL;
                const char *conn = s->config.auth_connection_string;
                KeyStoreConfig kc = {
                        .timeout_usec = s->config.auth_timeout_ms * USEC_PER_MSEC,
                        .cache_usec = s->config.auth_cache_ttl_ms * USEC_PER_MSEC,
                        .purge_interval_usec = MAX(s->config.auth_cleanup_interval_ms, (uint64_t) 1000) * USEC_PER_MSEC,
                        .touch_interval_usec = MAX(s->config.auth_last_used_flush_ms, (uint64_t) 50) * USEC_PER_MSEC,
                };
                if (isempty(conn)) {
                        /* Under systemd the state directory (StateDirectory=isol8); else ~/.isol8. */
                        const char *state = getenv("STATE_DIRECTORY");
                        if (!isempty(state) ? asprintf(&def, "%.*s/auth.db", (int) strcspn(state, ":"), state) < 0
                                            : asprintf(&def, "%s/.isol8/auth.db", getenv("HOME") ?: "/root") < 0)
                                return -ENOMEM;
                        conn = def;
                }
                r = keystore_new(&s->keys, s->event, conn, &kc);
                if (r < 0)
                        return log_error_errno(r, "Cannot open the key store: %m");
                log_info("DB-backed API keys in %s", keystore_describe(s->keys));
        }

        s->api = (ApiContext) {
                .event = s->event,
                .exec = {
                        .event = s->event,
                        .engine = s->engine,
                        .pool = s->pool,
                        .runtimes = &s->runtimes,
                        .devnull_fd = s->devnull_fd,
                        .max_file_bytes = s->config.limits.body_bytes,
                        .output_held = &s->output_held,
                        .output_budget = s->config.output_budget_bytes,
                },
                .policy = {
                        .defaults = &s->config.defaults,
                        .maximums = &s->config.limits,
                        .allowed_networks = s->config.security_allowed_networks,
                        .allow_seccomp_change = s->config.security_allow_client_seccomp_change,
                        .runtimes = &s->runtimes,
                },
                .queue = s->queue,
                .sessions = s->sessions,
                .keys = s->keys,
                .audit = s->audit,
                .default_ttl_ms = s->config.auth_default_ttl_ms,
                .sse_keepalive_usec = MAX(s->config.sse_keepalive_ms, (uint64_t) 100) * USEC_PER_MSEC,
        };

        routes = api_routes(&n_routes);
        HttpServerConfig hc = {
                .limits = {
                        .max_body_bytes = s->config.limits.body_bytes,
                        .connection_memory = (size_t) s->config.http_max_header_bytes,
                        .connection_timeout_sec = (unsigned) s->config.http_connection_timeout_sec,
                        .max_connections = (unsigned) s->config.http_max_connections,
                        .max_connections_per_ip = (unsigned) MIN(s->config.http_max_connections_per_ip,
                                                                 s->config.http_max_connections),
                        .request_head_timeout_usec = s->config.http_request_head_timeout_ms * USEC_PER_MSEC,
                },
                .routes = routes,
                .n_routes = n_routes,
                .authenticate = authenticate,
                .auth_userdata = s,
                .userdata = &s->api,
        };
        r = http_server_new(&s->http, s->event, listen_fd, &hc);
        if (r < 0)
                return r;
        TAKE_FD(listen_fd);

        if (!streq_ptr(opts->bus, "none")) {
                struct group *g = getgrnam(s->config.dbus_admin_group ?: "isol8");
                r = bus_service_new(&s->bus, s->event, opts->bus ?: "system", &s->api, g ? g->gr_gid : (gid_t) -1);
                if (r < 0) {
                        if (opts->bus)
                                return r;
                        log_notice("No system bus: running without the D-Bus interface (isol8ctl will not reach this server).");
                }
        }

        r = sd_event_add_signal(s->event, &s->sig_term, SIGTERM, on_signal, s);
        if (r < 0)
                return r;
        r = sd_event_add_signal(s->event, &s->sig_int, SIGINT, on_signal, s);
        if (r < 0)
                return r;
        r = sd_event_add_signal(s->event, &s->sig_hup, SIGHUP, on_reload, s);
        if (r < 0)
                return r;
        if (opts->config_path && !(s->config_path = strdup(opts->config_path)))
                return -ENOMEM;

        if (s->config.idle_exit_sec == IDLE_EXIT_DEFAULT)
                s->idle_exit_usec = opts->activated ? IDLE_EXIT_ACTIVATED_SEC * USEC_PER_SEC : 0;
        else
                s->idle_exit_usec = s->config.idle_exit_sec * USEC_PER_SEC;
        if (s->idle_exit_usec > 0) {
                log_info("Exiting after %" PRIu64 " s without connections, runs or sessions (idleExitSec).",
                         s->idle_exit_usec / USEC_PER_SEC);
                r = sd_event_add_time_relative(s->event, &s->idle_timer, CLOCK_MONOTONIC,
                                               MAX(s->idle_exit_usec / 4, USEC_PER_SEC), USEC_PER_SEC / 2, on_idle_check, s);
                if (r < 0)
                        return r;
        }

        pool_replenish(s->pool);
        *ret = TAKE_PTR(s);
        return 0;
}

int server_run(Server *s) {
        int r;

        printf("isol8 server v%s listening on http://localhost:%u\n", ISOL8_VERSION, s->port);
        fflush(stdout);
        (void) sd_notifyf(false, "READY=1\nSTATUS=Listening on port %u", s->port);
        r = sd_event_loop(s->event);
        log_info("Stopped.");
        return r;
}
